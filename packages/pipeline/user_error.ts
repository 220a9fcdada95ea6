/**
 * Errors a user can act on (bad type name, output exists, unsupported architecture): shown as
 * one line, exit code 1.
 * @module
 */

/** A problem with what the user asked for, not with the code. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}
