/** Where a flow error points, and the error itself. Pure. */

/** Where an error points: file, 1-based line and column when known, and the step it concerns. */
export interface Place {
  file: string;
  line?: number;
  column?: number;
  stepId?: string;
}

export function formatPlace(place: Place): string {
  const position = place.line === undefined ? "" : `:${place.line}:${place.column ?? 1}`;
  const step = place.stepId === undefined ? "" : ` step "${place.stepId}":`;
  return `${place.file}${position}:${step}`;
}

/** A flow file that cannot be used; its message names the file, the step and the position. */
export class FlowError extends Error {
  override name = "FlowError";
  constructor(readonly place: Place, readonly reason: string) {
    super(`${formatPlace(place)} ${reason}`);
  }
}
