/** About four characters a token: for servers that report no usage, and calls cut short. */
export function estimateTokens(text: string): number {
  return tokensForChars(text.length);
}

/** The same estimate when only the length is known (the text streamed by a call cut short). */
export function tokensForChars(chars: number): number {
  return Math.ceil(chars / 4);
}
