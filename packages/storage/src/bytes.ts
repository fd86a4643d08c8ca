/**
 * A copy in a plain Uint8Array of its own. Not `slice()`: on a Buffer that returns a view, and
 * both callers' buffers and LMDB's read buffers may be Buffers that change later.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
