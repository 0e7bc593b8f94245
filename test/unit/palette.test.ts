import { describe, expect, it } from 'vitest';
import {
  contrast,
  edgeColours,
  fallbackStyles,
  groupStyle,
  styleOfType,
  textColour,
  typeStyles,
  unknownStyle,
} from '../../explorer/palette.js';

const white = '#FFFFFF';

describe("the explorer's colours", () => {
  it('computes WCAG contrast ratios', () => {
    expect(contrast('#000000', white)).toBeCloseTo(21, 5);
    expect(contrast(white, white)).toBe(1);
    expect(contrast('#767676', white)).toBeGreaterThanOrEqual(4.5); // the classic AA grey
    expect(contrast('#777777', white)).toBeLessThan(4.5);
  });

  it('gives every record type a colour with at least 4.5:1 against white, both for white badges on it and for it on the page', () => {
    const styles = [...Object.values(typeStyles), ...fallbackStyles, unknownStyle, groupStyle];
    for (const { colour } of styles) expect(contrast(colour, white), colour).toBeGreaterThanOrEqual(4.5);
    for (const colour of [...Object.values(edgeColours), textColour])
      expect(contrast(colour, white), colour).toBeGreaterThanOrEqual(4.5);
  });

  it('tells types apart by shape as well as colour', () => {
    const known = Object.values(typeStyles);
    expect(new Set(known.map((style) => style.shape)).size).toBe(known.length);
    expect(new Set(known.map((style) => style.colour)).size).toBe(known.length);
    expect(styleOfType(1)).toBe(typeStyles[1]);
    expect(styleOfType(null)).toBe(unknownStyle);
    expect(fallbackStyles).toContain(styleOfType(10900));
  });
});
