/** Where a command writes; tests capture it, the binary uses the process streams. */
export interface CommandIo {
  /** Bytes are written as they are (`quorate kv get --raw`). */
  stdout(text: string | Uint8Array): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Resolves when the user asks the command to stop (SIGINT/SIGTERM for the binary). */
  stopSignal: Promise<string>;
}

/** Exit codes shared by every command. */
export const Exit = {
  Ok: 0,
  /** A definite negative answer: key not found, cas condition false, history not linearizable. */
  No: 1,
  /** The command failed: bad input, unreachable NATS, a cluster error. */
  Error: 2,
} as const;
