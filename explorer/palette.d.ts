// Types of palette.js, for the unit test that checks its contrast.
export interface TypeStyle {
  colour: string;
  shape: string;
}
export const typeStyles: Record<number, TypeStyle>;
export const fallbackStyles: TypeStyle[];
export const unknownStyle: TypeStyle;
export const groupStyle: TypeStyle;
export function styleOfType(code: number | null | undefined): TypeStyle;
export function luminance(hex: string): number;
export function contrast(a: string, b: string): number;
export const edgeColours: { current: string; inactive: string; outOfDate: string };
export const textColour: string;
