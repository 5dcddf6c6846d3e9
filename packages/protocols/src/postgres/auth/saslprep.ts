/**
 * SASLprep (RFC 4013, a profile of stringprep RFC 3454) as Postgres applies it to passwords
 * before SCRAM hashing (src/common/saslprep.c):
 *
 *   - a pure ASCII string is used as is;
 *   - otherwise non-ASCII spaces map to U+0020, "commonly mapped to nothing" characters are
 *     dropped, the result is NFKC-normalized and checked for prohibited characters and the
 *     bidirectional rule;
 *   - if a check fails the caller falls back to the raw password (so does Postgres), which is
 *     why this returns `undefined` rather than throwing.
 *
 * Simplifications, documented rather than hidden: the Unicode 3.2 "unassigned code point"
 * table (A.1) is not checked, and the left-to-right class (D.2) is approximated by "a letter
 * that is not right-to-left". Both matter only for passwords mixing unusual scripts.
 */

type Ranges = readonly (readonly [number, number])[];

const inRanges = (cp: number, ranges: Ranges): boolean => {
  for (const [lo, hi] of ranges) if (cp >= lo && cp <= hi) return true;
  return false;
};

/** C.1.2 non-ASCII space characters. */
const NON_ASCII_SPACE: Ranges = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** B.1 commonly mapped to nothing. */
const MAPPED_TO_NOTHING: Ranges = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/** C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9. */
const PROHIBITED: Ranges = [
  ...NON_ASCII_SPACE,
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0xd800, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0xffffd],
  [0x100000, 0x10fffd],
];

/** D.1 characters with bidirectional property R or AL. */
const RAND_AL_CAT: Ranges = [
  [0x05be, 0x05be],
  [0x05c0, 0x05c0],
  [0x05c3, 0x05c3],
  [0x05d0, 0x05ea],
  [0x05f0, 0x05f4],
  [0x061b, 0x061b],
  [0x061f, 0x061f],
  [0x0621, 0x063a],
  [0x0640, 0x064a],
  [0x066d, 0x066f],
  [0x0671, 0x06d5],
  [0x06dd, 0x06dd],
  [0x06e5, 0x06e6],
  [0x06fa, 0x06fe],
  [0x0700, 0x070d],
  [0x0710, 0x0710],
  [0x0712, 0x072c],
  [0x0780, 0x07a5],
  [0x07b1, 0x07b1],
  [0x200f, 0x200f],
  [0xfb1d, 0xfb1d],
  [0xfb1f, 0xfb28],
  [0xfb2a, 0xfb36],
  [0xfb38, 0xfb3c],
  [0xfb3e, 0xfb3e],
  [0xfb40, 0xfb41],
  [0xfb43, 0xfb44],
  [0xfb46, 0xfbb1],
  [0xfbd3, 0xfd3d],
  [0xfd50, 0xfd8f],
  [0xfd92, 0xfdc7],
  [0xfdf0, 0xfdfc],
  [0xfe70, 0xfe74],
  [0xfe76, 0xfefc],
];

const LETTER = /\p{L}/u;

function isNonCharacter(cp: number): boolean {
  // C.4 also lists U+nFFFE and U+nFFFF of every plane.
  return (cp & 0xfffe) === 0xfffe;
}

/** The SASLprep'd form of `input`, or undefined when SASLprep rejects it (use the raw string then). */
export function saslprep(input: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(input)) return input;

  let mapped = "";
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, NON_ASCII_SPACE)) mapped += " ";
    else if (!inRanges(cp, MAPPED_TO_NOTHING)) mapped += ch;
  }
  if (mapped === "") return undefined;
  const normalized = mapped.normalize("NFKC");

  let hasRandAL = false;
  let hasL = false;
  const codePoints: number[] = [];
  for (const ch of normalized) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, PROHIBITED) || isNonCharacter(cp)) return undefined;
    const randAL = inRanges(cp, RAND_AL_CAT);
    if (randAL) hasRandAL = true;
    else if (LETTER.test(ch)) hasL = true;
    codePoints.push(cp);
  }
  if (hasRandAL) {
    // RFC 3454 §6: no L characters, and the string starts and ends with RandALCat.
    if (hasL) return undefined;
    if (!inRanges(codePoints[0]!, RAND_AL_CAT) || !inRanges(codePoints[codePoints.length - 1]!, RAND_AL_CAT)) {
      return undefined;
    }
  }
  return normalized;
}
