// A tiny element builder: `h('button', {type: 'button', onclick}, 'Send')`. Text is always set as
// text, never parsed as HTML, so a message cannot inject markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'className') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

/** A time as the reader's clock shows it. */
export function clock(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? '' : at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** A nonce unique to this browser: random, since two tabs must never share one. */
export function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return 'w-' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
