/**
 * The one door guest output goes through on its way to a client (shell reads
 * today). Identity for now; the place where output is changed before anyone
 * sees it (secret redaction), so no code path has to learn about that.
 */
export const visibleOutput = (text: string): string => text
