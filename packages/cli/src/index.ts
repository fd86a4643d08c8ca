export type { AdminReply, AdminRequest, HeldBackup } from "./admin.js";
export { ADMIN_SERVICE } from "./admin.js";
export { adminRequest, findLeader } from "./admin-client.js";
export type { CommandIo } from "./io.js";
export { Exit } from "./io.js";
export { main } from "./main.js";
export type { MemberStatus, RaftKvMember, RaftKvMemberOptions } from "./member.js";
export { collectStatus, STATUS_SERVICE, startRaftKvMember } from "./member.js";
