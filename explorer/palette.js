// Colours and shapes of record types in the connection explorer. Every colour has at least 4.5:1
// contrast against white, both ways: white text on it (the count badges) and it on the white page (the
// nodes, the legend, the chart bars) pass WCAG AA. Shapes differ too, so colour is never the only cue.

/** Known types first, by object type code; other types take the fallback colours by code. */
export const typeStyles = {
  1: { colour: '#0F5EA8', shape: 'round-rectangle' }, // account
  2: { colour: '#1A7F37', shape: 'ellipse' }, // contact
  8: { colour: '#8A4B08', shape: 'diamond' }, // systemuser
  9: { colour: '#7B3FBF', shape: 'hexagon' }, // team
  4201: { colour: '#B3261E', shape: 'round-triangle' }, // appointment
};

export const fallbackStyles = [
  { colour: '#00707F', shape: 'round-pentagon' },
  { colour: '#A4166A', shape: 'round-octagon' },
  { colour: '#5C5C5C', shape: 'vee' },
  { colour: '#6E6100', shape: 'rhomboid' },
];

/** Records whose type is unknown (a record without readable connections) and groups. */
export const unknownStyle = { colour: '#595959', shape: 'ellipse' };
export const groupStyle = { colour: '#3D3D3D', shape: 'round-rectangle' };

export function styleOfType(code) {
  if (code === null || code === undefined) return unknownStyle;
  return typeStyles[code] ?? fallbackStyles[Math.abs(Number(code)) % fallbackStyles.length];
}

/** WCAG 2 relative luminance of a #rrggbb colour. */
export function luminance(hex) {
  const channels = [1, 3, 5].map((start) => parseInt(hex.slice(start, start + 2), 16) / 255);
  const [r, g, b] = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2 contrast ratio of two #rrggbb colours (1 to 21). */
export function contrast(a, b) {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

/** Edge colours: current connections, and inactive or out-of-date ones (also dashed or dotted). */
export const edgeColours = { current: '#3D3D3D', inactive: '#6B6B6B', outOfDate: '#6B6B6B' };
export const textColour = '#1F1F1F';
