/// <reference lib="dom" />
/**
 * The web bundle's page: loads the bundle's classifier (classifier.js: slim.json, the model and
 * onnxruntime-web, WebAssembly) from beside the page, then classifies a chosen or dropped image.
 */
import { loadClassifier, type Classification, type WebClassifier } from './classifier.js';

/** What the page last did, for people (the DOM) and for tests (window.slimLast). */
interface PageResult extends Omit<Classification, 'scores' | 'pixels'> {
  file: string;
  /** The C×H×W bytes fed to the model (before normalization). */
  pixels: number[];
}

declare global {
  interface Window {
    slimLast?: PageResult;
    slimError?: string;
  }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function setStatus(state: 'loading' | 'ready' | 'busy' | 'done' | 'error', text: string): void {
  const status = $('status');
  status.dataset['state'] = state;
  status.textContent = text;
}

async function classify(file: File, classifier: WebClassifier): Promise<PageResult> {
  const { scores: _scores, pixels, ...result } = await classifier.classify(file);
  return { file: file.name, ...result, pixels: Array.from(pixels) };
}

function show(result: PageResult): void {
  const list = $('results');
  list.replaceChildren(
    ...result.top.map((p) => {
      const li = document.createElement('li');
      li.dataset['index'] = String(p.index);
      li.textContent = `${p.label} — ${(p.score * 100).toFixed(1)} %`;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, Math.round(p.score * 200))}px`;
      li.append(bar);
      return li;
    }),
  );
  setStatus('done', `${result.file} (${result.width}×${result.height}): ${result.top[0]!.label}, model time ${result.latency_ms.toFixed(1)} ms`);
}

async function main(): Promise<void> {
  let classifier: WebClassifier;
  try {
    // The page's folder: classifier.js sits beside it.
    classifier = await loadClassifier(new URL('./', location.href));
  } catch (e) {
    window.slimError = String(e);
    setStatus('error', `Cannot start: ${(e as Error).message ?? e}. Serve this folder over HTTP (see README.md).`);
    return;
  }
  setStatus('ready', 'Ready: choose or drop an image.');
  const input = $<HTMLInputElement>('file');
  const drop = $('drop');
  const preview = $<HTMLImageElement>('preview');
  let busy = Promise.resolve();
  const run = (file: File): void => {
    busy = busy.then(async () => {
      setStatus('busy', `Classifying ${file.name}…`);
      // The previous image's scores go first: under a new file's error they would read as its result.
      $('results').replaceChildren();
      preview.src = URL.createObjectURL(file);
      preview.style.display = 'block';
      try {
        const result = await classify(file, classifier);
        window.slimLast = result;
        show(result);
      } catch (e) {
        window.slimError = String(e);
        preview.style.display = 'none';
        setStatus('error', `${file.name}: cannot classify — ${(e as Error).message ?? e}`);
      }
    });
  };
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) run(file);
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) run(file);
  });
}

void main();
