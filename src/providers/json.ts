/** The first balanced `{…}` or `[…]` in `text` starting at `start`, minding strings. */
function balanced(text: string, start: number): string | undefined {
  const open = text[start];
  const close = open === '{' ? '}' : ']';
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === open) depth++;
    else if (c === close && --depth === 0) return text.slice(start, i + 1);
  }
  return undefined;
}

function tryParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Models add trailing commas now and then.
    try {
      return JSON.parse(text.replace(/,\s*([}\]])/g, '$1'));
    } catch {
      return undefined;
    }
  }
}

/**
 * JSON from a model's answer, however it came: bare, in a ```json fence, or with prose around it.
 * Undefined when there is none to be found.
 */
export function parseJsonLoose(text: string): unknown {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  const direct = tryParse(trimmed);
  if (direct !== undefined) return direct;
  const fence = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/.exec(trimmed);
  if (fence?.[1]) {
    const fenced = tryParse(fence[1].trim());
    if (fenced !== undefined) return fenced;
  }
  let tries = 0;
  for (let i = 0; i < trimmed.length && tries < 50; i++) {
    const c = trimmed[i];
    if (c !== '{' && c !== '[') continue;
    tries++;
    const candidate = balanced(trimmed, i);
    if (candidate) {
      const parsed = tryParse(candidate);
      if (parsed !== undefined && typeof parsed === 'object' && parsed !== null) return parsed;
    }
  }
  return undefined;
}
