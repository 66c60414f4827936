/*
 * An LD_PRELOAD shim that fails chosen file system calls of a process on
 * chosen paths, to test how statelog's file backends handle I/O errors.
 * Compiled by test/faults/shim.ts (gcc -shared -fPIC ... -ldl).
 *
 * Environment:
 *   FAULT_PATH    substring of the paths whose calls are counted and may fail
 *                 (fd-based calls resolve the fd through /proc/self/fd)
 *   FAULT_OP      write | fsync | rename | open  (write covers write, pwrite,
 *                 writev, pwritev*; fsync covers fsync and fdatasync)
 *   FAULT_NTH     fail from the N-th matching call of FAULT_OP (1-based; 0: never)
 *   FAULT_COUNT   how many calls fail from there (default 1; 0: all)
 *   FAULT_ERRNO   EIO (default) | ENOSPC | a number
 *   FAULT_REPORT  file rewritten with the counters after each matching call
 *
 * Counters (one JSON object): matching calls per op, failures injected, and
 * fsyncs_on_failed_fd: fsync/fdatasync calls on a descriptor whose fsync
 * was failed by the shim and that was not closed since (a retried fsync on
 * a descriptor the kernel may have cleaned: it must stay 0). libuv closes
 * with syscall(SYS_close), which no wrapper sees: a descriptor number that
 * open returns again counts as closed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_WRITE, OP_FSYNC, OP_RENAME, OP_OPEN, OP_COUNT };
static const char *op_names[OP_COUNT] = {"write", "fsync", "rename", "open"};

static const char *fault_path;
static int fault_op = -1;
static long fault_nth, fault_count = 1;
static int fault_errno = EIO;
static const char *report_path;
static long calls[OP_COUNT];
static long injected;
static long fsyncs_on_failed_fd;
#define MAX_FD 65536
static unsigned char poisoned[MAX_FD];
static int ready;

static void init(void) {
  if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) return;
  fault_path = getenv("FAULT_PATH");
  const char *op = getenv("FAULT_OP");
  for (int i = 0; op && i < OP_COUNT; i++)
    if (strcmp(op, op_names[i]) == 0) fault_op = i;
  const char *s = getenv("FAULT_NTH");
  fault_nth = s ? atol(s) : 0;
  s = getenv("FAULT_COUNT");
  if (s) fault_count = atol(s);
  s = getenv("FAULT_ERRNO");
  if (s) fault_errno = strcmp(s, "EIO") == 0 ? EIO : strcmp(s, "ENOSPC") == 0 ? ENOSPC : atoi(s);
  report_path = getenv("FAULT_REPORT");
  __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
}

/* Writes the counters with raw system calls (never through this shim). */
static void report(void) {
  if (!report_path) return;
  char buf[512];
  int n = snprintf(buf, sizeof buf,
                   "{\"write\":%ld,\"fsync\":%ld,\"rename\":%ld,\"open\":%ld,\"injected\":%ld,"
                   "\"fsyncs_on_failed_fd\":%ld,\"pid\":%d}\n",
                   __atomic_load_n(&calls[OP_WRITE], __ATOMIC_RELAXED),
                   __atomic_load_n(&calls[OP_FSYNC], __ATOMIC_RELAXED),
                   __atomic_load_n(&calls[OP_RENAME], __ATOMIC_RELAXED),
                   __atomic_load_n(&calls[OP_OPEN], __ATOMIC_RELAXED), __atomic_load_n(&injected, __ATOMIC_RELAXED),
                   __atomic_load_n(&fsyncs_on_failed_fd, __ATOMIC_RELAXED), getpid());
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.%d.%ld", report_path, getpid(), (long)syscall(SYS_gettid));
  int fd = syscall(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  syscall(SYS_write, fd, buf, n);
  syscall(SYS_close, fd);
  syscall(SYS_renameat, AT_FDCWD, tmp, AT_FDCWD, report_path);
}

static int path_matches(const char *path) { return fault_path && path && strstr(path, fault_path) != NULL; }

static int fd_matches(int fd) {
  if (!fault_path || fd < 0) return 0;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = 0;
  return path_matches(target);
}

/* Counts a matching call of `op`; true when it must fail. */
static int should_fail(int op) {
  long n = __atomic_add_fetch(&calls[op], 1, __ATOMIC_SEQ_CST);
  int fail = op == fault_op && fault_nth > 0 && n >= fault_nth && (fault_count == 0 || n < fault_nth + fault_count);
  if (fail) __atomic_add_fetch(&injected, 1, __ATOMIC_SEQ_CST);
  report();
  return fail;
}

#define REAL(name)                    \
  static __typeof__(&name) real_##name; \
  if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static int check_fd(int op, int fd) {
  init();
  if (!fd_matches(fd)) return 0;
  if (op == OP_FSYNC && fd < MAX_FD && __atomic_load_n(&poisoned[fd], __ATOMIC_SEQ_CST)) {
    __atomic_add_fetch(&fsyncs_on_failed_fd, 1, __ATOMIC_SEQ_CST);
  }
  if (!should_fail(op)) return 0;
  if (op == OP_FSYNC && fd < MAX_FD) __atomic_store_n(&poisoned[fd], 1, __ATOMIC_SEQ_CST);
  errno = fault_errno;
  return 1;
}

ssize_t write(int fd, const void *buf, size_t count) {
  REAL(write);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_write(fd, buf, count);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_pwrite(fd, buf, count, offset);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite64);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_pwrite64(fd, buf, count, offset);
}
ssize_t writev(int fd, const struct iovec *iov, int n) {
  REAL(writev);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_writev(fd, iov, n);
}
ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t offset) {
  REAL(pwritev);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_pwritev(fd, iov, n, offset);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t offset) {
  REAL(pwritev64);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_pwritev64(fd, iov, n, offset);
}
ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t offset, int flags) {
  REAL(pwritev2);
  if (check_fd(OP_WRITE, fd)) return -1;
  return real_pwritev2(fd, iov, n, offset, flags);
}
int fsync(int fd) {
  REAL(fsync);
  if (check_fd(OP_FSYNC, fd)) return -1;
  return real_fsync(fd);
}
int fdatasync(int fd) {
  REAL(fdatasync);
  if (check_fd(OP_FSYNC, fd)) return -1;
  return real_fdatasync(fd);
}
int close(int fd) {
  REAL(close);
  if (fd >= 0 && fd < MAX_FD) __atomic_store_n(&poisoned[fd], 0, __ATOMIC_SEQ_CST);
  return real_close(fd);
}
int rename(const char *from, const char *to) {
  REAL(rename);
  init();
  if ((path_matches(from) || path_matches(to)) && should_fail(OP_RENAME)) {
    errno = fault_errno;
    return -1;
  }
  return real_rename(from, to);
}
int renameat(int fromfd, const char *from, int tofd, const char *to) {
  REAL(renameat);
  init();
  if ((path_matches(from) || path_matches(to)) && should_fail(OP_RENAME)) {
    errno = fault_errno;
    return -1;
  }
  return real_renameat(fromfd, from, tofd, to);
}

#define OPEN_WRAPPER(name, ...)                                                                                        \
  int name(__VA_ARGS__) {                                                                                              \
    mode_t mode = 0;                                                                                                   \
    if (flags & (O_CREAT | __O_TMPFILE)) {                                                                             \
      va_list ap;                                                                                                      \
      va_start(ap, flags);                                                                                             \
      mode = va_arg(ap, mode_t);                                                                                       \
      va_end(ap);                                                                                                      \
    }                                                                                                                  \
    init();                                                                                                            \
    if (path_matches(path) && should_fail(OP_OPEN)) {                                                                 \
      errno = fault_errno;                                                                                             \
      return -1;                                                                                                       \
    }                                                                                                                  \
    int fd = (OPEN_CALL_##name);                                                                                       \
    /* A number open returns is a new description: the old one was closed (libuv closes with syscall(SYS_close)). */   \
    if (fd >= 0 && fd < MAX_FD) __atomic_store_n(&poisoned[fd], 0, __ATOMIC_SEQ_CST);                                 \
    return fd;                                                                                                         \
  }

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
#define OPEN_CALL_open (real_open ? 0 : (real_open = dlsym(RTLD_NEXT, "open"))), real_open(path, flags, mode)
#define OPEN_CALL_open64 \
  (real_open64 ? 0 : (real_open64 = dlsym(RTLD_NEXT, "open64"))), real_open64(path, flags, mode)
#define OPEN_CALL_openat \
  (real_openat ? 0 : (real_openat = dlsym(RTLD_NEXT, "openat"))), real_openat(dirfd, path, flags, mode)
#define OPEN_CALL_openat64 \
  (real_openat64 ? 0 : (real_openat64 = dlsym(RTLD_NEXT, "openat64"))), real_openat64(dirfd, path, flags, mode)

OPEN_WRAPPER(open, const char *path, int flags, ...)
OPEN_WRAPPER(open64, const char *path, int flags, ...)
OPEN_WRAPPER(openat, int dirfd, const char *path, int flags, ...)
OPEN_WRAPPER(openat64, int dirfd, const char *path, int flags, ...)
