// The pure-JS SHA-256 and HMAC-SHA256 (src/core/sha256.js) against node:crypto.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";

import { hmacSha256, sha256, sha256Hex } from "../../src/core/sha256.js";

const nodeSha = (b) => new Uint8Array(createHash("sha256").update(b).digest());
const nodeHmac = (k, b) => new Uint8Array(createHmac("sha256", k).update(b).digest());

test("sha256 equals node:crypto for every length 0..300 and 1 MiB", () => {
  for (let n = 0; n <= 300; n++) {
    const data = new Uint8Array(randomBytes(n));
    assert.deepEqual(sha256(data), nodeSha(data), `length ${n}`);
  }
  const big = new Uint8Array(randomBytes(1 << 20));
  assert.deepEqual(sha256(big), nodeSha(big), "1 MiB");
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("sha256 reads a typed-array view, not its whole buffer", () => {
  const buf = new Uint8Array(randomBytes(100));
  const view = buf.subarray(10, 90);
  assert.deepEqual(sha256(view), nodeSha(view));
});

test("hmacSha256 equals node:crypto for keys and data of lengths 0..300", () => {
  for (let n = 0; n <= 300; n++) {
    const key = new Uint8Array(randomBytes((n * 7) % 200)); // short, block-sized and long keys
    const data = new Uint8Array(randomBytes(n));
    assert.deepEqual(hmacSha256(key, data), nodeHmac(key, data), `key ${key.length}, data ${n}`);
  }
  const big = new Uint8Array(randomBytes(1 << 20));
  assert.deepEqual(hmacSha256("secret", big), nodeHmac("secret", big), "1 MiB");
  assert.deepEqual(hmacSha256("clé", "données"), nodeHmac(Buffer.from("clé"), Buffer.from("données")), "strings as UTF-8");
});

test("sha256 refuses what is not bytes", () => {
  assert.throws(() => sha256(42), TypeError);
  assert.throws(() => hmacSha256(null, new Uint8Array(1)), TypeError);
});
