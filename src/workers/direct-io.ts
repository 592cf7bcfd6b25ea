/**
 * O_DIRECT needs memory aligned to the block size, which JavaScript cannot see: the addon tells
 * a buffer's address. Re-exported here for the pool's pack writer (the pool sits above workers,
 * not beside native).
 */
export { alignedBuffer, DIRECT_ALIGN, wholeBlocks } from '../native/index.js';
