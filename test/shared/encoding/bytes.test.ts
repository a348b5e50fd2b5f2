// The one byte equality and concatenation (src/shared/encoding/bytes.ts). Node and workerd.
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes } from '../../../src/shared/encoding/bytes.js';

describe('bytesEqual', () => {
  it.each([
    [[], [], true],
    [[1, 2, 3], [1, 2, 3], true],
    [[1, 2, 3], [1, 2, 4], false],
    [[0, 2, 3], [1, 2, 3], false],
    [[1, 2], [1, 2, 3], false],
    [[1, 2, 3], [1, 2], false],
    [[255], [127], false],
  ])('%j = %j: %s', (a, b, expected) => {
    expect(bytesEqual(new Uint8Array(a), new Uint8Array(b))).toBe(expected);
  });

  it('compares views by their contents, not their buffers', () => {
    const buf = new Uint8Array([9, 1, 2, 9, 1, 2]);
    expect(bytesEqual(buf.subarray(1, 3), buf.subarray(4, 6))).toBe(true);
  });
});

describe('concatBytes', () => {
  it('joins parts in order into a new array', () => {
    const a = new Uint8Array([1, 2]);
    const out = concatBytes([a, new Uint8Array(), new Uint8Array([3]), a.subarray(1)]);
    expect(out).toEqual(new Uint8Array([1, 2, 3, 2]));
    expect(concatBytes([])).toEqual(new Uint8Array());
    out[0] = 7;
    expect(a[0]).toBe(1);
  });
});
