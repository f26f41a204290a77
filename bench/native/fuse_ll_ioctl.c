// fuse_ll_ioctl: the libfuse3 comparison point of bench/transport. A minimal low-level FUSE server exposing one
// regular file MOUNT/dev that answers every ioctl with result 0 and out_bufsz bytes (the in bytes echoed, the rest
// zero), i.e. the cheapest possible restricted-ioctl round trip through libfuse. Not part of the emulator.
// Usage: fuse_ll_ioctl [-s] MOUNTDIR   (-s: fuse_session_loop, one thread; else fuse_session_loop_mt)
// Prints "ready\n" on stdout once mounted; SIGINT/SIGTERM end the loop and unmount.
#define FUSE_USE_VERSION 312 /* FUSE_MAKE_VERSION(3, 12): fuse_session_loop_mt with a fuse_loop_config */
#include <fuse_lowlevel.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Inode numbers: FUSE_ROOT_ID is the mount's root directory; the one file below it. */
#define FILE_INO 2
static const char FILE_NAME[] = "dev";
/* Attribute/entry cache lifetime (s): long, so the timed loop never sees LOOKUP/GETATTR. */
static const double ATTR_TIMEOUT = 3600.0;
/* Largest restricted ioctl size (_IOC_SIZEBITS = 14): the reply buffer never needs more. */
#define MAX_IOCTL_OUT (1u << 14)

static int fill_attr(fuse_ino_t ino, struct stat *st) {
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) { st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; return 0; }
	if (ino == FILE_INO) { st->st_mode = S_IFREG | 0666; st->st_nlink = 1; return 0; }
	return -1;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
	if (parent != FUSE_ROOT_ID || strcmp(name, FILE_NAME) != 0) { fuse_reply_err(req, ENOENT); return; }
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	e.ino = FILE_INO;
	e.generation = 1;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ATTR_TIMEOUT;
	fill_attr(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	(void)fi;
	struct stat st;
	if (fill_attr(ino, &st) != 0) { fuse_reply_err(req, ENOENT); return; }
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	if (ino != FILE_INO) { fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT); return; }
	fi->direct_io = 1;      /* same open flags as the emulator's FUSE file */
	fi->nonseekable = 1;
	fuse_reply_open(req, fi);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
	(void)ino; (void)fi;
	fuse_reply_err(req, 0);
}

static void ll_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
		     unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz) {
	(void)ino; (void)cmd; (void)arg; (void)fi; (void)flags;
	static __thread unsigned char out[MAX_IOCTL_OUT]; /* per thread: the -mt loop replies concurrently */
	if (out_bufsz > sizeof out) { fuse_reply_err(req, EINVAL); return; }
	size_t echo = in_bufsz < out_bufsz ? in_bufsz : out_bufsz;
	if (echo) memcpy(out, in_buf, echo);
	if (out_bufsz > echo) memset(out + echo, 0, out_bufsz - echo);
	fuse_reply_ioctl(req, 0, out_bufsz ? out : NULL, out_bufsz);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = ll_lookup,
	.getattr = ll_getattr,
	.open = ll_open,
	.release = ll_release,
	.ioctl = ll_ioctl,
};

int main(int argc, char **argv) {
	int single = 0, opt;
	while ((opt = getopt(argc, argv, "s")) != -1) {
		if (opt == 's') single = 1;
		else { fprintf(stderr, "usage: %s [-s] MOUNTDIR\n", argv[0]); return 2; }
	}
	if (optind + 1 != argc) { fprintf(stderr, "usage: %s [-s] MOUNTDIR\n", argv[0]); return 2; }
	const char *mnt = argv[optind];

	char *fargv[] = { argv[0], NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se) { fprintf(stderr, "fuse_ll_ioctl: fuse_session_new failed\n"); return 1; }
	int rc = 1;
	if (fuse_set_signal_handlers(se) != 0) goto out_destroy;
	if (fuse_session_mount(se, mnt) != 0) goto out_signals;
	printf("ready\n");
	fflush(stdout);
	if (single) {
		rc = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		rc = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return rc < 0 ? 1 : 0;
}
