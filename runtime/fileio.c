/*
 * fileio.c - atomic file writes (runtime/fileio.h).
 *
 * The recipe every careful cache and compiler uses (Inductor's write_atomic,
 * cuda-python's program cache, with the fsync they sometimes skip): write a
 * uniquely named temporary file next to the destination, fsync it, rename
 * it over the destination (atomic within one file system), then fsync the
 * folder so the rename itself survives a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/fileio.h"

/* "PATH: error: STEP: REASON", as every message about a file reads. */
static fusec_status io_fail(ir_diag *d, const char *path, const char *step, int e) {
    const char *saved = d->file;
    d->file = path;
    ir_error(d, (ir_loc){0}, "%s: %s", step, strerror(e ? e : EIO));
    d->file = saved;
    return FUSEC_ERR_IO;
}

/* fsync the folder holding path, so that a rename into it is durable. */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static bool write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

fusec_status rt_write_file_atomic(const char *path, const void *const *parts, const size_t *lens,
                                  int nparts, unsigned mode, ir_diag *d) {
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0, plen = strlen(path);
    char *tmp = malloc(plen + 9);
    if (!tmp) return io_fail(d, path, "out of memory", ENOMEM);
    memcpy(tmp, path, dlen);
    tmp[dlen] = '.';
    memcpy(tmp + dlen + 1, path + dlen, plen - dlen);
    memcpy(tmp + plen + 1, ".XXXXXX", 8);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return io_fail(d, path, "cannot create a temporary file", e);
    }
    (void)fchmod(fd, (mode_t)mode); /* mkstemp makes it 0600 */
    const char *step = NULL;
    int e = 0;
    for (int i = 0; i < nparts && !step; i++)
        if (lens[i] && !write_all(fd, parts[i], lens[i])) step = "write failed", e = errno;
    if (!step && fsync(fd) != 0) step = "fsync failed", e = errno;
    if (close(fd) != 0 && !step) step = "close failed", e = errno;
    if (!step && rename(tmp, path) != 0) step = "cannot rename the temporary file into place", e = errno;
    if (step) {
        unlink(tmp);
        free(tmp);
        return io_fail(d, path, step, e);
    }
    free(tmp);
    sync_dir(path);
    return FUSEC_OK;
}
