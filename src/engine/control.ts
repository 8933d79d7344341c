/** Messages on the store's control channel, which every worker on every host listens to. */
export type ControlMessage = { type: 'cancel'; task_id: string };

export function encodeControl(message: ControlMessage): string {
  return JSON.stringify(message);
}

/** Returns undefined for anything that is not a control message we know (never throws). */
export function decodeControl(raw: string): ControlMessage | undefined {
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const m = value as Record<string, unknown>;
    if (m.type === 'cancel' && typeof m.task_id === 'string') return { type: 'cancel', task_id: m.task_id };
    return undefined;
  } catch {
    return undefined;
  }
}
