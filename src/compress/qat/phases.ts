/**
 * A QAT run with --bn-epochs trains in two phases (BatchNorm live, then folded), each checkpointing in its
 * own folder of --checkpoint-dir under these names; a run without trains as one phase, 'whole', in the
 * folder itself. One list for the trainer, the resume check and the output-path checks.
 */
export const QAT_PHASE_FOLDERS = ['bn-live', 'folded'] as const;

export type QatPhase = 'whole' | (typeof QAT_PHASE_FOLDERS)[number];

/** The phase a checkpoint's folder name says it belongs to, if it is one of the two. */
export function phaseFolder(name: string): (typeof QAT_PHASE_FOLDERS)[number] | undefined {
  return QAT_PHASE_FOLDERS.find((p) => p === name);
}
