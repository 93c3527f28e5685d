/*
 * xform_bench.c - what shaping a target's input costs per event: an InputTransformer and an
 * InputPath on a small EC2-style event, and on the 35 KB realistic payload from the shared
 * corpus when it is there. Prints one line per figure.
 *   bench_xform [iterations] [large-event.json]
 *     (default 500000; the large event defaults to
 *      $SLUICE_SHARED/corpus/patterns/localstack-eventbridge-snapshots/large_complex_payload.json)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/transform.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"

static const char small_event[]
        = "{\"version\":\"0\",\"id\":\"7bf73129-1428-4cd3-a780-95db273d1602\",\"detail-type\":"
          "\"EC2 Instance State-change Notification\",\"source\":\"aws.ec2\",\"account\":"
          "\"123456789012\",\"time\":\"2015-11-11T21:29:54Z\",\"region\":\"us-east-1\","
          "\"resources\":[\"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111\"],"
          "\"detail\":{\"instance-id\":\"i-0123456789\",\"state\":\"RUNNING\"}}";

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*n = len;
	return buf;
}

static int
run(const char *label, const char *target, const char *event, size_t len, long iters)
{
	json_error_t je;
	json_t *t = json_loads(target, 0, &je);
	xform_t *x = NULL;
	struct sl_error err;
	if (!t || xform_new(t, 1, &x, &err) != SL_OK) {
		fprintf(stderr, "%s: %s\n", label, t ? err.message : je.text);
		json_decref(t);
		return 1;
	}
	json_decref(t);
	const struct xform_ctx ctx
	        = { "arn:aws:events:us-east-1:123456789012:rule/r", "r", 1447277394000LL };
	size_t out_total = 0;
	uint64_t t0 = sl_clock_mono_ns();
	for (long i = 0; i < iters; i++) {
		char *out;
		size_t n;
		if (xform_render(x, event, len, &ctx, &out, &n, &err) != SL_OK) {
			fprintf(stderr, "%s: %s\n", label, err.message);
			xform_free(x);
			return 1;
		}
		out_total += n;
		sl_free(out);
	}
	uint64_t ns = sl_clock_mono_ns() - t0;
	printf("%s, event %zu B -> %zu B: %.0f renders/s (%.2f us each)\n", label, len,
	       out_total / (size_t)iters, (double)iters * 1e9 / (double)(ns ? ns : 1),
	       (double)ns / 1e3 / (double)iters);
	xform_free(x);
	return 0;
}

int
main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 500000;
	if (iters <= 0)
		iters = 1;
	sl_alloc_init();
	const char *tx
	        = "{\"Id\":\"t\",\"InputTransformer\":{\"InputPathsMap\":{\"instance\":"
	          "\"$.detail.instance-id\",\"state\":\"$.detail.state\",\"t\":\"$.time\"},"
	          "\"InputTemplate\":\"{\\\"instance\\\": <instance>, \\\"state\\\": <state>, "
	          "\\\"at\\\": <t>, \\\"msg\\\": \\\"instance <instance> is in <state>\\\"}\"}}";
	const char *ip = "{\"Id\":\"t\",\"InputPath\":\"$.detail\"}";
	int rc = run("InputTransformer (3 variables, JSON template)", tx, small_event,
	             strlen(small_event), iters);
	rc |= run("InputPath $.detail", ip, small_event, strlen(small_event), iters);

	char path[1024];
	const char *big_path = argc > 2 ? argv[2] : NULL;
	if (!big_path && getenv("SLUICE_SHARED")) {
		snprintf(path, sizeof path,
		         "%s/corpus/patterns/localstack-eventbridge-snapshots/"
		         "large_complex_payload.json",
		         getenv("SLUICE_SHARED"));
		big_path = path;
	}
	size_t n = 0;
	char *big = big_path ? slurp(big_path, &n) : NULL;
	if (!big) {
		printf("large event: skipped (pass a path or set SLUICE_SHARED)\n");
		return rc;
	}
	long big_iters = iters / 25 ? iters / 25 : 1;
	const char *tx_big = "{\"Id\":\"t\",\"InputTransformer\":{\"InputPathsMap\":{\"a\":"
	                     "\"$.time\",\"b\":\"$.region\"},\"InputTemplate\":\"{\\\"a\\\": <a>, "
	                     "\\\"b\\\": <b>, \\\"e\\\": <aws.events.event>}\"}}";
	rc |= run("InputTransformer (2 variables + <aws.events.event>), large event", tx_big, big,
	          n, big_iters);
	rc |= run("InputPath $.detail, large event", ip, big, n, big_iters);
	free(big);
	return rc;
}
