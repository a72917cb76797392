/**
 * SHA-256 (FIPS 180-4) of a string's UTF-8 bytes, as lowercase hex, synchronously: a pure function the
 * flow layer (definition hashes) and the store (short file names) both need, hence here. node:crypto would
 * do the same, but importing it loads Node's compatibility layer, ~20 ms of every command's
 * start-up; Web Crypto's digest is asynchronous. tests/domain/sha256_test.ts checks it against
 * node:crypto.
 */
const K = new Uint32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

/** Characters encoded at a time: a definition of megabytes is hashed without a copy of its bytes. */
const CHUNK_CHARS = 16 * 1024;

export function sha256Hex(text: string): string {
  const h = new Uint32Array([
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  // The UTF-8 bytes, a chunk at a time (at most 3 bytes per UTF-16 unit), behind the bytes of the last
  // chunk that did not fill a 64-byte block; 64 more for the padding at the end.
  const buffer = new Uint8Array(64 + CHUNK_CHARS * 3 + 64);
  const view = new DataView(buffer.buffer);
  const encoder = new TextEncoder();
  let total = 0, held = 0;
  for (let at = 0; at < text.length;) {
    let end = Math.min(text.length, at + CHUNK_CHARS);
    // Never split a surrogate pair: each half alone would encode as U+FFFD.
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    const { written } = encoder.encodeInto(text.slice(at, end), buffer.subarray(held));
    at = end;
    total += written;
    held += written;
    const whole = held - (held % 64);
    for (let offset = 0; offset < whole; offset += 64) block(h, w, view, offset);
    buffer.copyWithin(0, whole, held);
    held -= whole;
  }
  // Padding: a 1 bit, zeros, and the length in bits as a 64-bit big-endian number, to 64-byte blocks.
  const length = Math.ceil((held + 9) / 64) * 64;
  buffer.fill(0, held, length);
  buffer[held] = 0x80;
  view.setUint32(length - 8, Math.floor(total / 0x20000000));
  view.setUint32(length - 4, (total * 8) >>> 0);
  for (let offset = 0; offset < length; offset += 64) block(h, w, view, offset);
  return Array.from(h, (word) => word.toString(16).padStart(8, "0")).join("");
}

/** Hashes the 64-byte block at `offset`. */
function block(h: Uint32Array, w: Uint32Array, view: DataView, offset: number): void {
  for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15], y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
  }
  compress(h, w);
}

function compress(h: Uint32Array, w: Uint32Array): void {
  // Plain locals and rotations written out (ROTR(x, n) = x >>> n | x << 32 - n): this runs cold, once
  // per command, where an array per round and a call per rotation were most of the cost.
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) >>> 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) >>> 0;
  }
  h[0] = (h[0] + a) >>> 0;
  h[1] = (h[1] + b) >>> 0;
  h[2] = (h[2] + c) >>> 0;
  h[3] = (h[3] + d) >>> 0;
  h[4] = (h[4] + e) >>> 0;
  h[5] = (h[5] + f) >>> 0;
  h[6] = (h[6] + g) >>> 0;
  h[7] = (h[7] + hh) >>> 0;
}
