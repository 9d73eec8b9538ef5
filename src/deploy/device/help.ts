/** The bundle commands' --help texts, shown without loading ONNX Runtime or sharp. */

export const PREDICT_HELP = `usage: node predict.js [--top K] [--json] [--threads N] IMAGE|FOLDER...

Classifies JPEG, PNG, WebP, GIF, TIFF or AVIF images with this bundle's model.
  --top K       classes per image (default 5)
  --json        print one JSON document on stdout
  --threads N   ONNX Runtime threads (default: all CPUs; env SLIM_THREADS)
Exit status: 0 all classified, 1 some image could not be read (named on stderr), 2 bad usage.`;

export const SERVER_HELP = `usage: node server.js [--port P] [--host H] [--threads N] [--max-body-mb M] [--max-megapixels P] [--queue Q] [--max-batch B] [--no-access-log]

Serves this bundle's model over HTTP (see README.md for the API):
  --port P         default 8080                         (env PORT)
  --host H         address to bind, default 0.0.0.0     (env HOST; 127.0.0.1 = this machine only)
  --threads N      ONNX Runtime threads, default all CPUs (env SLIM_THREADS)
  --max-body-mb M  largest upload in MiB, default 10     (env SLIM_MAX_BODY_MB)
  --max-megapixels P  largest image decoded, default 40 (env SLIM_MAX_MEGAPIXELS; 8000×6000 is 48)
  --queue Q        requests held at once, default 256; more get 503 (env SLIM_QUEUE)
  --max-batch B    images per ONNX Runtime run, default 8 (env SLIM_MAX_BATCH)
  --no-access-log  no line per request on stderr         (env SLIM_ACCESS_LOG=0)
Stops gracefully on SIGTERM / SIGINT: answers admitted requests, refuses new ones.`;
