// Errors about what the caller gave the model (data, a setting), in a module of their own: it imports nothing, so
// throwing one never makes one part of the model import another (datasets/ used to import train/ for DataError).
// Each message names the file, field or setting and the fix; the CLI turns these into exit-2 messages
// (INPUT_ERRORS in packages/cli/src/options.ts).

/** A problem with the training data or a run folder, phrased for the user (file, field, fix). */
export class DataError extends Error {
  override name = 'DataError';
}

/**
 * A setting's value that does not parse or lies out of range (train/settings.ts): the message names the setting as
 * the user spelled it (its flag), the rule and the value given.
 */
export class SettingError extends Error {
  override name = 'SettingError';
}
