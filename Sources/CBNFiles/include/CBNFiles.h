#ifndef CBNFILES_H
#define CBNFILES_H

/// Atomically exchanges the directory entries `a` and `b` (both must exist, on the same
/// file system): after the call `a` names what `b` named and vice versa, with no moment
/// at which either name is missing.
///
/// Linux: renameat2(…, RENAME_EXCHANGE). Returns 0 on success; −1 with errno set otherwise
/// (ENOSYS or EINVAL where the kernel or file system cannot exchange: the caller falls back to
/// two renames).
int bn_exchange_paths(const char *a, const char *b);

#endif
