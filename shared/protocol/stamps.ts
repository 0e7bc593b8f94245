/** The stamps ("<fingerprint>.<nonce>") a commit keeps in `lastop`, newest last (see protocol.ts). */
export const stampsIn = (lastop: string): string[] => lastop.split(' ').filter(Boolean);

/** The fingerprint of the request that made the current state. */
export const latestRequest = (lastop: string): string => stampsIn(lastop).at(-1)?.split('.')[0] ?? '';

/** The fingerprints of commits no client asked for: the repair job's, and an undone create's. */
export const REPAIR = 'repair';
export const UNDO = 'undo';
export const byRepair = (lastop: string): boolean => [REPAIR, UNDO].includes(latestRequest(lastop));
