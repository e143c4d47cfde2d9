/* check_errors.c - error codes, names and messages. */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

START_TEST(lib_codes_are_distinct_from_errno)
{
    /* Every AS_E* code is negative, below any negated errno, and named. */
    int code;
    for (code = AS__ERR_FIRST + 1; code < AS__ERR_END; code++) {
        ck_assert(as_err_is_lib(code));
        ck_assert_int_lt(code, -4096);
        ck_assert_int_eq(strncmp(as_err_name(code), "AS_E", 4), 0);
        ck_assert_str_ne(as_strerror(code), "unknown error");
    }
    ck_assert(!as_err_is_lib(-ECONNRESET));
    ck_assert(!as_err_is_lib(0));
}
END_TEST

START_TEST(names_and_messages)
{
    ck_assert_str_eq(as_err_name(AS_ECANCELLED), "AS_ECANCELLED");
    ck_assert_str_eq(as_strerror(AS_ECANCELLED), "operation cancelled");
    ck_assert_str_eq(as_err_name(AS_EFDSETSIZE), "AS_EFDSETSIZE");
    ck_assert_str_eq(as_err_name(AS_EPORT), "AS_EPORT");
    ck_assert_str_eq(as_strerror(AS_EPORT), "port must be 0-65535");
    ck_assert_str_eq(as_err_name(AS_ENOTSUP), "AS_ENOTSUP");
    ck_assert_str_eq(as_strerror(AS_ENOTSUP), "TLS is not supported in this build");
    ck_assert_str_eq(as_err_name(AS_ETLS), "AS_ETLS");
    ck_assert_str_eq(as_err_name(AS_ECERT), "AS_ECERT");
    ck_assert_str_eq(as_strerror(AS_ECERT), "certificate verify failed");
    ck_assert_str_eq(as_err_name(-ECONNRESET), "ECONNRESET");
    ck_assert_str_eq(as_strerror(-ECONNRESET), "connection reset by peer");
    ck_assert_str_eq(as_err_name(-EPIPE), "EPIPE");
    ck_assert_str_eq(as_err_name(0), "OK");
    ck_assert_str_eq(as_strerror(0), "success");
}
END_TEST

/* errors.h takes no objects, so its part of the NULL rule (asyncstreams.h)
 * is that no code, however wrong, gets a NULL or a crash: every call of it
 * with the codes no table holds. */
START_TEST(unknown_codes_never_return_null)
{
    tu_null_call calls[] = {
        TU_NULL_INT(strcmp(as_err_name(-99999), "UNKNOWN"), 0),
        TU_NULL_INT(strcmp(as_err_name(AS__ERR_END), "UNKNOWN"), 0),
        TU_NULL_INT(strcmp(as_err_name(AS__ERR_FIRST), "UNKNOWN"), 0),
        TU_NULL_INT(strcmp(as_err_name(INT_MIN), "UNKNOWN"), 0),
        TU_NULL_INT(strcmp(as_err_name(INT_MAX), "UNKNOWN"), 0),
        TU_NULL_INT(strcmp(as_strerror(-99999), "unknown system error"), 0),
        TU_NULL_INT(strcmp(as_strerror(INT_MIN), "unknown system error"), 0),
        TU_NULL_INT(strcmp(as_strerror(12345), "unknown error"), 0),
        TU_NULL_INT(strcmp(as_strerror(INT_MAX), "unknown error"), 0),
        TU_NULL_INT(as_err_is_lib(AS__ERR_FIRST), 0),
        TU_NULL_INT(as_err_is_lib(AS__ERR_END), 0),
        TU_NULL_INT(as_err_is_lib(INT_MIN), 0),
    };

    tu_check_null(calls);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("codes");
    tcase_add_test(tc, lib_codes_are_distinct_from_errno);
    tcase_add_test(tc, names_and_messages);
    tcase_add_test(tc, unknown_codes_never_return_null);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
