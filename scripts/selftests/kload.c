// SPDX-License-Identifier: MIT OR Apache-2.0
//
// kload: the kernel oracle of kbpf's selftests suite (scripts/selftests.sh builds it).
//
// Loads the programs of one BPF object into the running kernel ONE AT A TIME, the way
// libbpf loads them (BTF, func/line info, CO-RE, kfunc resolution, maps, global data):
// for each chosen program the object is opened afresh, autoload is switched off for every
// other program (except the "auxiliary" programs a plan names), and the object is loaded
// with a verifier log. One JSON line per program goes to stdout:
//
//   {"name":…,"section":…,"prog_type":N,"verdict":"accept"|"reject","errno":N,
//    "stage":"verifier"|"libbpf"|"open","error_line":…,"verified_insns":N,
//    "log_level":N,"prog_flags":N,"retval":N|null,"run_errno":N,"log":…,"libbpf_log":…}
//
// "error_line" is the last non-empty line of the verifier log before the
// `processed N insns` statistics line (or the last line of libbpf's own messages when the
// kernel's verifier never produced a log). "verified_insns" comes from bpf_prog_info for
// accepted programs and from the statistics line for rejected ones (-1 when absent).
//
// usage: kload [-l LEVEL] [-F FLAGS] [-c CAPMASK] [-m MAP] [-p PLAN] OBJ [PROG...]
//   -l LEVEL   log level for programs the plan does not mention (default 1)
//   -F FLAGS   prog_flags OR-ed into every program's flags (e.g. BPF_F_TEST_RND_HI32)
//   -c CAPMASK drop these capabilities (bit numbers as in linux/capability.h, hex or
//              decimal mask) from the effective set first, as the kernel's test_verifier
//              does with CAP_SYS_ADMIN
//   -p PLAN    tab-separated lines `name  log_level  prog_flags  aux1,aux2  run  btf_path`:
//              only these programs are loaded, each with its log level and flags, and the
//              named auxiliary programs loaded with it (the selftests' __auxiliary; "-" for
//              none); run 1: test-run it once loaded, as the selftests' test_loader does
//              (64 zero bytes in, 256 out, repeat 1; no input for BPF_PROG_TYPE_SYSCALL);
//              btf_path: the BTF CO-RE relocations resolve against (the selftests'
//              __btf_path, libbpf's btf_custom_path; "-" or absent: the kernel's)
//   -m MAP     before a test run, store the selftests' `struct test_val` (index 28,
//              foo[6] = 0xabcdef12) at key 0 of MAP (prog_tests/verifier.c's
//              init_test_val_map for verifier_array_access and verifier_value_ptr_arith)
//   PROG...    only these programs (default: every program of the object)
//
// Builds against any libbpf 1.x: `cc kload.c -lbpf -lelf -lz`, or against the kernel
// tree's libbpf.a (scripts/selftests.sh prefers the latter).

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define LOG_BUF_SIZE (16u << 20)
#define LIBBPF_BUF_SIZE (64u << 10)

struct plan_entry {
	char *name;
	int log_level;
	unsigned int flags;
	char *aux; /* comma-separated, may be empty */
	int run;   /* BPF_PROG_TEST_RUN after a successful load */
	char *btf_path; /* btf_custom_path, or NULL */
};

static char libbpf_buf[LIBBPF_BUF_SIZE];
static size_t libbpf_len;
static int in_load_log; /* inside libbpf's "-- BEGIN PROG LOAD LOG --" dump */

static void append_libbpf(const char *s, size_t n)
{
	if (libbpf_len + n + 1 < sizeof(libbpf_buf)) {
		memcpy(libbpf_buf + libbpf_len, s, n);
		libbpf_len += n;
		libbpf_buf[libbpf_len] = 0;
	}
}

/* libbpf's messages, less the logs it repeats: the verifier log between "-- BEGIN PROG LOAD
 * LOG --" and "-- END PROG LOAD LOG --" is reported as "log"; of a BTF load log only its
 * last line (the kernel's reason) is kept. */
static int print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char *msg = NULL, *btf;
	va_list copy;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(copy, args);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n <= 0 || !(msg = malloc(n + 1)))
		return 0;
	vsnprintf(msg, n + 1, fmt, args);
	if (strstr(msg, "-- BEGIN PROG LOAD LOG --")) {
		in_load_log = !strstr(msg, "-- END PROG LOAD LOG --");
	} else if (in_load_log) {
		if (strstr(msg, "-- END PROG LOAD LOG --"))
			in_load_log = 0;
	} else if ((btf = strstr(msg, "-- BEGIN BTF LOAD LOG"))) {
		char *end = strstr(btf, "-- END BTF LOAD LOG");
		char *last = NULL, *p = btf, *line_end;

		if (end)
			*end = 0;
		/* the last non-empty line of the BTF log */
		while ((line_end = strchr(p, '\n'))) {
			if (line_end > p)
				last = p;
			*line_end = 0;
			p = line_end + 1;
		}
		if (*p)
			last = p;
		append_libbpf("libbpf: BTF load log: ", 22);
		if (last)
			append_libbpf(last, strlen(last));
		append_libbpf("\n", 1);
	} else {
		append_libbpf(msg, n);
	}
	free(msg);
	return 0;
}

static void json_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	for (; p && *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

/* The last non-empty line before the `processed N insns` line (or the last non-empty line
 * when there is none); `insns` gets N, or -1. */
/* The kernel's "verification time N usec" (BPF_LOG_STATS), or -1. */
static long verify_us(const char *log)
{
	const char *p = log ? strstr(log, "verification time ") : NULL;

	return p ? strtol(p + 18, NULL, 10) : -1;
}

static void error_line(const char *log, char *out, size_t out_sz, long *insns)
{
	const char *line = log, *next, *stats = NULL;
	const char *last = NULL, *last_end = NULL;

	*insns = -1;
	out[0] = 0;
	if (!log)
		return;
	for (line = log; line && *line; line = next) {
		const char *end = strchr(line, '\n');

		next = end ? end + 1 : NULL;
		if (!end)
			end = line + strlen(line);
		if (!strncmp(line, "processed ", 10) && strstr(line, " insns")) {
			stats = line;
			*insns = strtol(line + 10, NULL, 10);
			break;
		}
		/* BPF_LOG_STATS lines come between the message and `processed`. */
		if (!strncmp(line, "verification time ", 18) || !strncmp(line, "stack depth ", 12))
			continue;
		/* skip blank lines */
		{
			const char *q = line;

			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			if (q == end)
				continue;
		}
		last = line;
		last_end = end;
	}
	(void)stats;
	if (last) {
		size_t n = last_end - last;

		if (n >= out_sz)
			n = out_sz - 1;
		memcpy(out, last, n);
		out[n] = 0;
	}
}

/* The line of libbpf's messages that says what failed: the first "load failed" or "failed
 * to create" line, else the first line that mentions a failure, else the last line. */
static void libbpf_error_line(char *out, size_t out_sz)
{
	static const char *const strong[] = { "BPF program load failed", "failed to create",
					      "failed to resolve", "failed to find", "failed to relocate",
					      "unsupported", NULL };
	static const char *const weak[] = { "failed", "error", "unknown", "not found", NULL };
	char *copy = strdup(libbpf_buf), *save = NULL, *tok;
	const char *best = NULL, *fallback = NULL, *last = NULL;
	int i;

	out[0] = 0;
	if (!copy)
		return;
	for (tok = strtok_r(copy, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
		if (!*tok)
			continue;
		last = tok;
		for (i = 0; !best && strong[i]; i++)
			if (strstr(tok, strong[i]))
				best = tok;
		for (i = 0; !fallback && weak[i]; i++)
			if (strstr(tok, weak[i]) && !strstr(tok, "BTF"))
				fallback = tok;
	}
	if (best || fallback || last)
		snprintf(out, out_sz, "%s", best ? best : fallback ? fallback : last);
	free(copy);
}

static int drop_caps(unsigned long long mask)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[0].effective &= ~(unsigned int)(mask & 0xffffffffu);
	data[1].effective &= ~(unsigned int)(mask >> 32);
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

static int aux_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (p && *p) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return 1;
		p = c ? c + 1 : NULL;
	}
	return 0;
}

static const char *obj_name_of(const char *path, char *buf, size_t sz)
{
	const char *base = strrchr(path, '/');
	char *dot;

	snprintf(buf, sz, "%s", base ? base + 1 : path);
	dot = strstr(buf, ".bpf.o");
	if (!dot)
		dot = strrchr(buf, '.');
	if (dot)
		*dot = 0;
	return buf;
}

static const char *init_map_name;

/* test_loader's do_prog_test_run: returns 0 and sets *retval, or -errno. */
static int test_run(struct bpf_object *obj, struct bpf_program *prog, int *retval)
{
	__u8 data_out[64 << 2] = {}, data_in[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = data_in, .data_size_in = sizeof(data_in),
		    .data_out = data_out, .data_size_out = sizeof(data_out), .repeat = 1);
	int err;

	if (init_map_name) {
		struct { unsigned int index; int foo[11]; } value = { .index = (6 + 1) * sizeof(int) };
		struct bpf_map *map = bpf_object__find_map_by_name(obj, init_map_name);
		int key = 0;

		value.foo[6] = 0xabcdef12;
		if (map && bpf_map_update_elem(bpf_map__fd(map), &key, &value, 0))
			return -errno;
	}
	if (bpf_program__type(prog) == BPF_PROG_TYPE_SYSCALL) {
		memset(&topts, 0, sizeof(topts));
		topts.sz = sizeof(topts);
	}
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &topts);
	if (err)
		return -errno;
	*retval = topts.retval;
	return 0;
}

static void load_one(const char *path, const char *target, int log_level, unsigned int flags,
		     const char *aux, int run, const char *btf_path, char *log_buf)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	struct bpf_object *obj;
	struct bpf_program *prog, *tprog = NULL;
	char objname[256], line[4096];
	const char *stage = "verifier";
	long insns = -1;
	int err, verdict_ok, prog_type = 0, tprog_fd, retval = 0, run_err = 0, ran = 0;
	unsigned int all_flags = flags;

	open_opts.object_name = obj_name_of(path, objname, sizeof(objname));
	open_opts.btf_custom_path = btf_path;
	libbpf_buf[0] = 0;
	libbpf_len = 0;
	in_load_log = 0;
	log_buf[0] = 0;
	obj = bpf_object__open_file(path, &open_opts);
	if (!obj) {
		err = -errno;
		libbpf_error_line(line, sizeof(line));
		printf("{\"name\":");
		json_str(stdout, target);
		printf(",\"section\":\"\",\"prog_type\":0,\"verdict\":\"reject\",\"errno\":%d,"
		       "\"stage\":\"open\",\"error_line\":", -err);
		json_str(stdout, line);
		printf(",\"verified_insns\":-1,\"log_level\":%d,\"prog_flags\":%u,\"retval\":null,"
		       "\"run_errno\":0,\"log\":\"\",\"libbpf_log\":", log_level, flags);
		json_str(stdout, libbpf_buf);
		printf("}\n");
		fflush(stdout);
		return;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *name = bpf_program__name(prog);
		int is_target = !strcmp(name, target);

		if (is_target)
			tprog = prog;
		bpf_program__set_autoload(prog, is_target || aux_has(aux, name));
	}
	if (!tprog) {
		fprintf(stderr, "kload: %s: no program %s\n", path, target);
		bpf_object__close(obj);
		return;
	}
	prog_type = bpf_program__type(tprog);
	bpf_program__set_log_buf(tprog, log_buf, LOG_BUF_SIZE);
	/* BPF_LOG_STATS on top: the kernel's own "verification time N usec" line. */
	bpf_program__set_log_level(tprog, log_level | 4);
	all_flags = bpf_program__flags(tprog) | flags;
	bpf_program__set_flags(tprog, all_flags);

	err = bpf_object__load(obj);
	tprog_fd = err ? -1 : bpf_program__fd(tprog);
	verdict_ok = !err && tprog_fd >= 0;
	if (verdict_ok) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(tprog_fd, &info, &len))
			insns = info.verified_insns;
		line[0] = 0;
		if (run) {
			run_err = test_run(obj, tprog, &retval);
			ran = !run_err;
		}
	} else if (log_buf[0]) {
		error_line(log_buf, line, sizeof(line), &insns);
	} else {
		stage = "libbpf";
		libbpf_error_line(line, sizeof(line));
	}

	printf("{\"name\":");
	json_str(stdout, target);
	printf(",\"section\":");
	json_str(stdout, bpf_program__section_name(tprog));
	printf(",\"prog_type\":%d,\"verdict\":\"%s\",\"errno\":%d,\"stage\":\"%s\",\"error_line\":",
	       prog_type, verdict_ok ? "accept" : "reject", verdict_ok ? 0 : -err,
	       verdict_ok ? "verifier" : stage);
	json_str(stdout, line);
	printf(",\"verified_insns\":%ld,\"verify_us\":%ld,\"log_level\":%d,\"prog_flags\":%u,",
	       insns, verify_us(log_buf), log_level, all_flags);
	if (ran)
		printf("\"retval\":%d,", retval);
	else
		printf("\"retval\":null,");
	printf("\"run_errno\":%d,\"log\":", -run_err);
	json_str(stdout, log_buf);
	printf(",\"libbpf_log\":");
	json_str(stdout, libbpf_buf);
	printf("}\n");
	fflush(stdout);
	bpf_object__close(obj);
}

static struct plan_entry *read_plan(const char *path, int *count)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	struct plan_entry *plan = NULL;
	char *line = NULL;
	size_t cap = 0;
	int n = 0;

	if (!f) {
		fprintf(stderr, "kload: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *name, *lvl, *flg, *aux, *run, *btf;

		line[strcspn(line, "\n")] = 0;
		name = strtok_r(line, "\t", &save);
		if (!name || !*name)
			continue;
		lvl = strtok_r(NULL, "\t", &save);
		flg = strtok_r(NULL, "\t", &save);
		aux = strtok_r(NULL, "\t", &save);
		run = strtok_r(NULL, "\t", &save);
		btf = strtok_r(NULL, "\t", &save);
		plan = realloc(plan, (n + 1) * sizeof(*plan));
		plan[n].name = strdup(name);
		plan[n].log_level = lvl ? atoi(lvl) : 1;
		plan[n].flags = flg ? strtoul(flg, NULL, 0) : 0;
		plan[n].aux = strdup(aux && strcmp(aux, "-") ? aux : "");
		plan[n].run = run ? atoi(run) : 0;
		plan[n].btf_path = btf && strcmp(btf, "-") ? strdup(btf) : NULL;
		n++;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	*count = n;
	return plan;
}

int main(int argc, char **argv)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	struct plan_entry *plan = NULL;
	int plan_n = 0, log_level = 1, opt, i;
	unsigned int flags = 0;
	unsigned long long caps = 0;
	const char *plan_path = NULL, *path;
	char *log_buf;

	while ((opt = getopt(argc, argv, "l:F:c:m:p:h")) != -1) {
		switch (opt) {
		case 'l': log_level = atoi(optarg); break;
		case 'F': flags = strtoul(optarg, NULL, 0); break;
		case 'c': caps = strtoull(optarg, NULL, 0); break;
		case 'p': plan_path = optarg; break;
		case 'm': init_map_name = optarg; break;
		default:
			fprintf(stderr, "usage: kload [-l LEVEL] [-F FLAGS] [-c CAPMASK] [-m MAP] [-p PLAN] OBJ [PROG...]\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: kload [-l LEVEL] [-F FLAGS] [-c CAPMASK] [-m MAP] [-p PLAN] OBJ [PROG...]\n");
		return 2;
	}
	path = argv[optind++];
	setrlimit(RLIMIT_MEMLOCK, &rl);
	libbpf_set_print(print_fn);
	if (caps && drop_caps(caps)) {
		fprintf(stderr, "kload: cannot drop capabilities 0x%llx\n", caps);
		return 2;
	}
	log_buf = malloc(LOG_BUF_SIZE);
	if (!log_buf)
		return 2;
	if (plan_path)
		plan = read_plan(plan_path, &plan_n);

	if (plan) {
		for (i = 0; i < plan_n; i++)
			load_one(path, plan[i].name, plan[i].log_level, plan[i].flags | flags,
				 plan[i].aux, plan[i].run, plan[i].btf_path, log_buf);
	} else if (optind < argc) {
		for (i = optind; i < argc; i++)
			load_one(path, argv[i], log_level, flags, "", 0, NULL, log_buf);
	} else {
		/* every program: names from one open of the object */
		LIBBPF_OPTS(bpf_object_open_opts, open_opts);
		struct bpf_object *obj;
		struct bpf_program *prog;
		char objname[256], **names = NULL;
		int n = 0;

		open_opts.object_name = obj_name_of(path, objname, sizeof(objname));
		obj = bpf_object__open_file(path, &open_opts);
		if (!obj) {
			fprintf(stderr, "kload: %s: cannot open: %s\n%s", path, strerror(errno),
				libbpf_buf);
			return 1;
		}
		bpf_object__for_each_program(prog, obj) {
			names = realloc(names, (n + 1) * sizeof(*names));
			names[n++] = strdup(bpf_program__name(prog));
		}
		bpf_object__close(obj);
		for (i = 0; i < n; i++)
			load_one(path, names[i], log_level, flags, "", 0, NULL, log_buf);
	}
	free(log_buf);
	return 0;
}
