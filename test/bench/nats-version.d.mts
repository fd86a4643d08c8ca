export declare const SYNC_ALWAYS_SINCE: string;
export declare function versionAtLeast(found: string, needed: string): boolean;
