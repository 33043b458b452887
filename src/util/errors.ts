// Errors the user can act on. The CLI prints `message` as one line and exits
// with `exitCode`; it never prints a stack trace for these.

export const EXIT = {
  OK: 0,
  FAILURE: 1,      // unexpected internal failure
  USAGE: 2,        // bad flags or configuration
  TARGET: 3,       // target process or executable not usable (missing, not ELF, not Rust, stripped)
  PRIVILEGE: 4,    // not enough privileges to load eBPF
  KERNEL: 5,       // the kernel lacks a required feature
} as const;

export class UserError extends Error {
  constructor(message: string, public readonly exitCode: number = EXIT.FAILURE) {
    super(message);
    this.name = 'UserError';
  }
}
