/*
 * errno.ts: the errno vocabulary of the model, with kernel numbers (x86-64/arm64
 * asm-generic values) for display, and the shared meaning table in our own words.
 * An errno is always a value in an Outcome, never an exception.
 */

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  ERANGE: 34,
  EDEADLOCK: 35,
  ENOMEM: 12,
  E2BIG: 7,
  EBADF: 9,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EOVERFLOW: 75,
  EBADFD: 77,
  EIO: 5,
  EBADE: 52,
} as const;

export type Errno = keyof typeof ERRNO;

export function isErrno(s: string): s is Errno {
  return Object.prototype.hasOwnProperty.call(ERRNO, s);
}

/** What each errno means across the iommufd uAPI (after the uAPI's general ioctl format doc). */
export const ERRNO_MEANING: Readonly<Record<Errno, string>> = {
  EPERM: 'not permitted: ownership conflict or missing capability',
  ENOENT: 'an ID or IOVA given does not exist (or is the wrong object type)',
  EFAULT: 'user memory could not be read or written',
  EBUSY: 'the object is in use',
  EEXIST: 'the range or object already exists',
  ENODEV: 'no such device, or the thing asked for is not set up',
  EINVAL: 'a field value is not correct',
  ENOTTY: 'the ioctl number is not supported on this file',
  ENOSPC: 'no free IOVA range fits',
  ERANGE: 'value out of range',
  EDEADLOCK: 'in-kernel users did not release their pins',
  ENOMEM: 'out of memory, or over RLIMIT_MEMLOCK',
  E2BIG: 'non-zero bytes in a part of the struct the kernel does not understand',
  EBADF: 'not an open file descriptor',
  EMSGSIZE: 'the output array is too small; the count was written back',
  EOPNOTSUPP: 'unknown flag bits, non-zero reserved fields, or an unsupported value',
  EADDRINUSE: 'an existing mapping or allowed range conflicts with a reservation or alignment',
  EOVERFLOW: 'arithmetic overflow, or a value that does not fit',
  EBADFD: 'the file descriptor is not of the expected kind',
  EIO: 'the driver rejected the command',
  EBADE: 'the selftest found other pages than the ones it expected',
};
