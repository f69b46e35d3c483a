/*
 * print.c - the canonical text form of a graph (docs/ir.md section 3).
 *
 * Printing then parsing gives back the same graph, and printing that again
 * gives the same text.  Canonical means: two-space indentation, every node's
 * result type written after ':', attributes in the op table's order and only
 * where they differ from the default, numbers in the shortest form that
 * reads back exactly (floats always with a '.' or an exponent).
 */
#define _GNU_SOURCE /* newlocale, uselocale */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

void ir_print_double(ir_str *s, double v) {
    if (isnan(v)) {
        ir_str_puts(s, "nan");
        return;
    }
    if (isinf(v)) {
        ir_str_puts(s, v < 0 ? "-inf" : "inf");
        return;
    }
    /* numbers are written in the C locale, whatever the embedding program
     * set LC_NUMERIC to: '.' is always the decimal point */
    pthread_once(&c_locale_once, make_c_locale);
    locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (old) uselocale(old);
    /* integral values below 1e16 read better without an exponent: 30.0 */
    if (strchr(buf, 'e') && v == floor(v) && fabs(v) < 1e16) snprintf(buf, sizeof buf, "%.0f", v);
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    ir_str_puts(s, buf);
}

void ir_value_ref(ir_str *s, const ir_value *v) {
    if (v->name) ir_str_printf(s, "%%%s", v->name);
    else ir_str_printf(s, "%%%d", v->id);
}

static void print_operand(ir_str *s, const ir_value *v) {
    if (v->kind != IR_VAL_LITERAL) {
        ir_value_ref(s, v);
    } else if (v->lit_is_bool || (v->type.dtype == FUSEC_DTYPE_BOOL && v->lit_is_int)) {
        ir_str_puts(s, v->lit_i ? "true" : "false");
    } else if (v->lit_is_int) {
        ir_str_printf(s, "%lld", (long long)v->lit_i);
    } else {
        ir_print_double(s, v->lit_f);
    }
}

static void print_string(ir_str *s, const char *str) {
    ir_str_putc(s, '"');
    for (; *str; str++) {
        if (*str == '"' || *str == '\\') ir_str_putc(s, '\\');
        ir_str_putc(s, *str);
    }
    ir_str_putc(s, '"');
}

/* Does an explicitly given attribute equal the spec's default? */
static bool is_default(const ir_attr_spec *sp, const ir_attr *a) {
    if (sp->presence != IR_AP_DEFAULT) return false;
    switch (sp->kind) {
    case IR_AK_INT:
    case IR_AK_BOOL: return a->i == sp->i;
    case IR_AK_FLOAT: return a->f == sp->f && signbit(a->f) == signbit(sp->f);
    case IR_AK_STR: return strcmp(a->s, sp->s) == 0;
    case IR_AK_INTS:
        return a->n == sp->n && (a->n == 0 || memcmp(a->ints, sp->ints, sizeof(int64_t) * (size_t)a->n) == 0);
    default: return false;
    }
}

static void print_attr_value(ir_str *s, const ir_attr_spec *sp, const ir_attr *a) {
    switch (sp->kind) {
    case IR_AK_INT: ir_str_printf(s, "%lld", (long long)a->i); break;
    case IR_AK_BOOL: ir_str_puts(s, a->i ? "true" : "false"); break;
    case IR_AK_FLOAT: ir_print_double(s, a->f); break;
    case IR_AK_STR: print_string(s, a->s); break;
    case IR_AK_DTYPE: ir_str_puts(s, ir_dtype_name(a->dt)); break;
    case IR_AK_INTS:
        ir_str_putc(s, '[');
        for (int i = 0; i < a->n; i++) ir_str_printf(s, i ? ", %lld" : "%lld", (long long)a->ints[i]);
        ir_str_putc(s, ']');
        break;
    case IR_AK_FLOATS:
        ir_str_putc(s, '[');
        for (int i = 0; i < a->n; i++) {
            if (i) ir_str_puts(s, ", ");
            ir_print_double(s, a->floats[i]);
        }
        ir_str_putc(s, ']');
        break;
    }
}

void ir_print_node(ir_str *s, const ir_node *n) {
    const ir_op_info *info = ir_op_get(n->op);
    ir_value_ref(s, n->out);
    ir_str_printf(s, " = %s(", info->name);
    for (int i = 0; i < n->nin; i++) {
        if (i) ir_str_puts(s, ", ");
        print_operand(s, n->in[i]);
    }
    ir_str_putc(s, ')');
    bool any = false;
    for (int k = 0; k < info->nattrs; k++) {
        const ir_attr *a = &n->attrs[k];
        if (!a->set || is_default(&info->attrs[k], a)) continue;
        ir_str_puts(s, any ? ", " : " {");
        any = true;
        ir_str_printf(s, "%s = ", info->attrs[k].name);
        print_attr_value(s, &info->attrs[k], a);
    }
    if (any) ir_str_putc(s, '}');
    ir_str_puts(s, " : ");
    ir_type_print(s, &n->out->type);
}

void ir_print_graph(ir_str *s, const ir_graph *g) {
    ir_str_printf(s, "func @%s(", g->name);
    for (int i = 0; i < g->nparams; i++) {
        if (i) ir_str_puts(s, ", ");
        ir_value_ref(s, g->params[i]);
        ir_str_puts(s, ": ");
        ir_type_print(s, &g->params[i]->type);
    }
    ir_str_puts(s, ") -> ");
    if (g->nresults != 1) ir_str_putc(s, '(');
    for (int i = 0; i < g->nresults; i++) {
        if (i) ir_str_puts(s, ", ");
        ir_type_print(s, &g->results[i]->type);
    }
    if (g->nresults != 1) ir_str_putc(s, ')');
    ir_str_puts(s, " {\n");
    for (const ir_node *n = g->first; n; n = n->next) {
        ir_str_puts(s, "  ");
        ir_print_node(s, n);
        ir_str_putc(s, '\n');
    }
    ir_str_puts(s, "  return ");
    for (int i = 0; i < g->nresults; i++) {
        if (i) ir_str_puts(s, ", ");
        ir_value_ref(s, g->results[i]);
    }
    ir_str_puts(s, "\n}\n");
}
