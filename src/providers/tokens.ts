/** About four characters a token: for servers that report no usage, and calls cut short. */
export function estimateTokens(text: string): number {
  return text ? Math.ceil(text.length / 4) : 0;
}
