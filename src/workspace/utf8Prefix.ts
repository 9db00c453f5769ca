/**
 * The longest prefix of raw bytes that holds at most `maxChars` characters
 * and never ends inside a UTF-8 sequence that may still be completed: a
 * shell's output is read in pieces, and a character split between two reads
 * belongs to the second. Bytes that are not UTF-8 count one character each
 * (the decoder shows them as U+FFFD).
 */
const decoder = new TextDecoder("utf-8")

/** The length of the UTF-8 sequence starting at bytes[i] if it is a valid one so far, else 0. */
const sequenceLength = (bytes: Uint8Array, i: number): number => {
  const b = bytes[i]!
  const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0
  if (n <= 1) return n
  // The second byte's range depends on the first (no overlong forms, surrogates or values past U+10FFFF).
  const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80
  const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf
  for (let k = 1; k < n && i + k < bytes.byteLength; k++) {
    const c = bytes[i + k]!
    if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return 0
  }
  return n
}

/**
 * `final`: no more bytes will follow these (an incomplete sequence at the end
 * is then taken, as U+FFFD). Returns the text and how many bytes it used.
 */
export const utf8Prefix = (bytes: Uint8Array, maxChars: number, final: boolean) => {
  let i = 0
  let chars = 0
  while (i < bytes.byteLength && chars < maxChars) {
    const n = sequenceLength(bytes, i)
    if (n === 0) i += 1
    else if (i + n <= bytes.byteLength) i += n
    else if (final) i += 1
    else break
    chars++
  }
  return { text: decoder.decode(bytes.subarray(0, i)), bytes: i }
}
