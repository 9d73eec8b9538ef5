/**
 * A strict little HTML reader for the report tests: tags must nest and close (void elements and
 * self-closing SVG tags excepted), attributes are parsed, entities decoded, script/style kept as raw
 * text. It throws at the first malformed spot, so "it parses" means something; the browser test
 * (Chromium) checks the same page with a real HTML parser.
 */
export interface El {
  tag: string;
  attrs: Record<string, string>;
  children: (El | string)[];
}

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);
const RAW = new Set(['script', 'style']);

function decode(s: string): string {
  return s.replace(/&(#\d+|#x[0-9a-f]+|amp|lt|gt|quot|apos|nbsp);/gi, (_m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' }[e.toLowerCase()]!;
  });
}

export function parseHtml(html: string): El {
  const root: El = { tag: '#root', attrs: {}, children: [] };
  const stack: El[] = [root];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`HTML does not parse at offset ${i} (${JSON.stringify(html.slice(Math.max(0, i - 40), i + 40))}): ${why}`);
  };
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      stack.at(-1)!.children.push(decode(html.slice(i)));
      break;
    }
    if (lt > i) stack.at(-1)!.children.push(decode(html.slice(i, lt)));
    i = lt;
    if (html.startsWith('<!--', i)) {
      const end = html.indexOf('-->', i);
      if (end < 0) fail('unclosed comment');
      i = end + 3;
    } else if (html.startsWith('<!', i)) {
      const end = html.indexOf('>', i);
      if (end < 0) fail('unclosed declaration');
      i = end + 1;
    } else if (html.startsWith('</', i)) {
      const m = /^<\/([A-Za-z][\w:-]*)\s*>/.exec(html.slice(i));
      if (!m) fail('bad closing tag');
      const tag = m![1]!.toLowerCase();
      const open = stack.at(-1)!;
      if (open.tag !== tag) fail(`</${tag}> closes <${open.tag}>`);
      stack.pop();
      i += m![0].length;
    } else {
      const m = /^<([A-Za-z][\w:-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*)\s*(\/?)>/.exec(html.slice(i));
      if (!m) fail('bad opening tag');
      const tag = m![1]!.toLowerCase();
      const attrs: Record<string, string> = {};
      for (const a of m![2]!.matchAll(/([^\s=>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g)) {
        const name = a[1]!.toLowerCase();
        if (name in attrs) fail(`duplicate attribute ${name} on <${tag}>`);
        attrs[name] = decode(a[2] ?? a[3] ?? a[4] ?? '');
      }
      const el: El = { tag, attrs, children: [] };
      stack.at(-1)!.children.push(el);
      i += m![0].length;
      if (m![3] || VOID.has(tag)) continue;
      if (RAW.has(tag)) {
        const end = html.indexOf(`</${tag}>`, i);
        if (end < 0) fail(`unclosed <${tag}>`);
        el.children.push(html.slice(i, end));
        i = end + tag.length + 3;
        continue;
      }
      stack.push(el);
    }
  }
  if (stack.length !== 1) throw new Error(`HTML does not parse: <${stack.at(-1)!.tag}> is never closed`);
  return root;
}

export function findAll(el: El, pred: (e: El) => boolean, out: El[] = []): El[] {
  for (const c of el.children) {
    if (typeof c === 'string') continue;
    if (pred(c)) out.push(c);
    findAll(c, pred, out);
  }
  return out;
}

export function textOf(el: El): string {
  return el.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}

/** Every URL-ish reference that would make a browser fetch something. */
export function externalRefs(html: string): string[] {
  const refs = [...html.matchAll(/\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']([^"']*)["']/gi)].map((m) => m[1]!).filter((u) => !u.startsWith('#'));
  const css = [...html.matchAll(/url\(\s*['"]?([^'")]+)/gi)].map((m) => m[1]!).filter((u) => !u.startsWith('#'));
  const imports = [...html.matchAll(/@import\b[^;]*/gi)].map((m) => m[0]);
  return [...refs, ...css, ...imports];
}
