/*
 * crash_def.h - the machine the crash test runs: a Pass, a Wait from the input, a Map whose
 * task fails once for some items (Retry), and a Parallel with a Wait branch.
 */
#ifndef SLUICE_TESTS_STEPPER_CRASH_DEF_H
#define SLUICE_TESTS_STEPPER_CRASH_DEF_H

#define CRASH_DEF                                                                                  \
	"{\"StartAt\":\"Init\",\"States\":{"                                                       \
	"\"Init\":{\"Type\":\"Pass\",\"Parameters\":{\"id.$\":\"$.id\",\"items.$\":\"$.items\","   \
	"\"w.$\":\"$.w\"},\"Next\":\"Pause\"},"                                                    \
	"\"Pause\":{\"Type\":\"Wait\",\"SecondsPath\":\"$.w\",\"Next\":\"Each\"},"                 \
	"\"Each\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"MaxConcurrency\":2,"               \
	"\"ItemSelector\":{\"v.$\":\"$$.Map.Item.Value\",\"i.$\":\"$$.Map.Item.Index\"},"          \
	"\"ItemProcessor\":{\"StartAt\":\"Work\",\"States\":{\"Work\":{\"Type\":\"Task\","         \
	"\"Resource\":\"arn:aws:states:us-east-1:000000000000:activity:crash\","                   \
	"\"Parameters\":{\"v.$\":\"$.v\",\"rc.$\":\"$$.State.RetryCount\"},"                       \
	"\"Retry\":[{\"ErrorEquals\":[\"Flaky\"],\"IntervalSeconds\":1,\"MaxAttempts\":2}],"       \
	"\"End\":true}}},\"ResultPath\":\"$.mapped\",\"Next\":\"Both\"},"                          \
	"\"Both\":{\"Type\":\"Parallel\",\"Branches\":["                                           \
	"{\"StartAt\":\"Count\",\"States\":{\"Count\":{\"Type\":\"Pass\",\"Parameters\":{"         \
	"\"n.$\":\"States.ArrayLength($.mapped)\"},\"End\":true}}},"                               \
	"{\"StartAt\":\"Nap\",\"States\":{\"Nap\":{\"Type\":\"Wait\",\"Seconds\":1,\"End\":true}}" \
	"}],"                                                                                      \
	"\"ResultSelector\":{\"n.$\":\"$[0].n\"},\"ResultPath\":\"$.par\",\"End\":true}}}"

#endif
