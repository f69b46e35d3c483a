/*
 * lexer.c - turns the bytes of a .ir file into tokens (spec section 2).
 *
 * The input is a (pointer, length) pair that is not NUL-terminated, so every
 * look at a byte goes through peek(), which answers 0 past the end; no token
 * is ever longer than what is left of the buffer.  The lexer keeps the line
 * number and the offset of the current line's start, from which each token's
 * 1-based column is its byte offset in the line plus one (a tab is one
 * column; the diagnostic's caret line copies tabs, so carets still line up).
 *
 * Names are the spec's: `%name` and `@name` are a letter or '_' followed by
 * letters, digits, '_' and '.', or digits only (`%0`).  Bare words (func,
 * return, op names, dtypes, true, false) are all FE_TK_IDENT and the parser
 * reads them by context, except `inf` and `nan`, which are numbers wherever
 * they appear.  A '-' directly followed by a digit, '.' or `inf` starts a
 * negative number, so `-2` and `-inf` are single literal tokens; "->" is the
 * arrow; any other '-' is a stray character.
 *
 * Numbers are decimal.  An integer (no '.', no exponent) must fit in int64:
 * it is accumulated digit by digit with an overflow check.  A float goes
 * through strtod on a bounded copy, with '.' swapped for the locale's radix
 * character so an embedding program's setlocale() cannot change what a file
 * means; a finite literal that overflows to infinity is an error (write
 * `inf`), underflow to a subnormal or zero is accepted.  A number run into
 * letters (`12ab`, `0x1f`, `1.2.3`) is one bad-number error, not two tokens.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/lexer.h"

/* Longest float literal we convert: the printer's shortest round-trip form
 * needs about 25 characters; this leaves room for hand-written digits. */
#define FE_MAX_FLOAT_CHARS 400

void fe_lexer_init(fe_lexer *lx, const char *src, size_t len, ir_diag *d) {
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->len = len;
    lx->line = 1;
    lx->d = d;
}

static int peek(const fe_lexer *lx, size_t off) {
    size_t i = lx->pos + off;
    return i < lx->len ? (unsigned char)lx->src[i] : 0;
}

/* Columns saturate at INT_MAX rather than wrap on absurdly long lines. */
static ir_loc loc_at(const fe_lexer *lx, size_t pos) {
    size_t col = pos - lx->line_start + 1;
    return (ir_loc){lx->line, col > INT_MAX ? INT_MAX : (int)col};
}

/* ASCII only, whatever the C locale says. */
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_name_start(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(int c) { return is_name_start(c) || is_digit(c) || c == '.'; }

/* Skip whitespace and comments, counting lines. */
static void skip_space(fe_lexer *lx) {
    while (lx->pos < lx->len) {
        int c = peek(lx, 0);
        if (c == '\n') {
            lx->pos++;
            if (lx->line < INT_MAX) lx->line++;
            lx->line_start = lx->pos;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
            lx->pos++;
        } else if (c == '#') {
            while (lx->pos < lx->len && peek(lx, 0) != '\n') lx->pos++;
        } else {
            break;
        }
    }
}

static size_t name_run(const fe_lexer *lx, size_t off) {
    size_t n = 0;
    while (lx->pos + off + n < lx->len && is_name_char(peek(lx, off + n))) n++;
    return n;
}

static bool word_is(const fe_lexer *lx, size_t off, const char *w) {
    size_t n = strlen(w);
    if (lx->pos + off + n > lx->len || memcmp(lx->src + lx->pos + off, w, n) != 0) return false;
    return !is_name_char(peek(lx, off + n));
}

/* Valid %/@ names: an ASCII letter or '_' then letters, digits, '_' and
 * '.', or all digits. */
static bool valid_name(const char *s, size_t n) {
    bool digits = n > 0 && is_digit(s[0]);
    if (n == 0 || !(digits || is_name_start(s[0]))) return false;
    for (size_t i = 0; i < n; i++)
        if (digits ? !is_digit(s[i]) : !is_name_char((unsigned char)s[i])) return false;
    return true;
}

static fe_token error_token(fe_token t) {
    t.kind = FE_TK_ERROR;
    return t;
}

static fe_token lex_sigil_name(fe_lexer *lx, fe_token t, fe_tok_kind kind) {
    char sigil = (char)peek(lx, 0);
    /* Take non-ASCII bytes into the name, to reject it as one bad name. */
    size_t n = 0;
    for (int c; lx->pos + 1 + n < lx->len && (is_name_char(c = peek(lx, 1 + n)) || c >= 0x80);)
        n++;
    t.text = lx->src + lx->pos + 1;
    t.len = n;
    lx->pos += 1 + n;
    if (n == 0) {
        ir_error(lx->d, t.loc, "expected a name after '%c'", sigil);
        return error_token(t);
    }
    if (!valid_name(t.text, n)) {
        ir_error(lx->d, t.loc,
                 "invalid name '%c%.*s' (a name is an ASCII letter or '_' followed by letters, "
                 "digits, '_' and '.', or digits only)",
                 sigil, (int)(n > 40 ? 40 : n), t.text);
        return error_token(t);
    }
    t.kind = kind;
    return t;
}

/* Convert a float literal (n <= FE_MAX_FLOAT_CHARS; at most one '.') with
 * strtod, independent of the C locale's radix character. */
static bool convert_float(const char *s, size_t n, double *out) {
    char buf[FE_MAX_FLOAT_CHARS + 8];
    const char *radix = localeconv()->decimal_point;
    if (!radix || !radix[0]) radix = ".";
    size_t rlen = strlen(radix), k = 0;
    if (rlen > 4) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            memcpy(buf + k, radix, rlen);
            k += rlen;
        } else {
            buf[k++] = s[i];
        }
    }
    buf[k] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + k || (errno == ERANGE && isinf(v))) return false;
    *out = v;
    return true;
}

static fe_token lex_number(fe_lexer *lx, fe_token t) {
    size_t start = lx->pos, i = 0;
    bool neg = peek(lx, 0) == '-';
    if (neg) i++;
    if (neg && word_is(lx, 1, "inf")) {
        lx->pos += 4;
        t.kind = FE_TK_FLOAT;
        t.f = -INFINITY;
        t.text = lx->src + start;
        t.len = 4;
        return t;
    }
    size_t mant = i;
    bool is_float = false, ok = true;
    while (is_digit(peek(lx, i))) i++;
    if (peek(lx, i) == '.') {
        is_float = true;
        i++;
        while (is_digit(peek(lx, i))) i++;
    }
    if (i - mant == (is_float ? 1u : 0u)) ok = false; /* no digit at all ("-.", "-") */
    if (ok && (peek(lx, i) == 'e' || peek(lx, i) == 'E')) {
        is_float = true;
        i++;
        if (peek(lx, i) == '+' || peek(lx, i) == '-') i++;
        if (!is_digit(peek(lx, i))) ok = false;
        while (is_digit(peek(lx, i))) i++;
    }
    /* A number run into a name ("12ab", "0x1f", "1.2.3") is one bad token. */
    if (is_name_char(peek(lx, i)) || !ok) {
        ok = false;
        i += name_run(lx, i);
    }
    lx->pos += i;
    t.text = lx->src + start;
    t.len = i;
    if (!ok) {
        ir_error(lx->d, t.loc, "bad number '%.*s'", (int)(t.len > 64 ? 64 : t.len), t.text);
        return error_token(t);
    }
    if (!is_float) {
        /* Accumulate the magnitude; -9223372036854775808 is the one value
         * whose magnitude exceeds INT64_MAX. */
        uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (size_t k = mant; k < i; k++) {
            unsigned dgt = (unsigned)(t.text[k] - '0');
            if (mag > (limit - dgt) / 10) {
                ir_error(lx->d, t.loc, "integer '%.*s' does not fit in 64 bits",
                         (int)(t.len > 64 ? 64 : t.len), t.text);
                return error_token(t);
            }
            mag = mag * 10 + dgt;
        }
        t.kind = FE_TK_INT;
        t.i = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
        t.f = (double)t.i;
        return t;
    }
    if (t.len > FE_MAX_FLOAT_CHARS) {
        ir_error(lx->d, t.loc, "number '%.*s...' is too long", 64, t.text);
        return error_token(t);
    }
    if (!convert_float(t.text, t.len, &t.f)) {
        ir_error(lx->d, t.loc, "floating-point number '%.*s' is out of range",
                 (int)(t.len > 64 ? 64 : t.len), t.text);
        return error_token(t);
    }
    t.kind = FE_TK_FLOAT;
    return t;
}

static fe_token lex_string(fe_lexer *lx, fe_token t) {
    size_t i = 1;
    ir_loc bad_loc = {0, 0};
    int bad_c = 0; /* the bad escape's character, or -1 for a control character */
    for (;;) {
        int c = peek(lx, i);
        if (lx->pos + i >= lx->len || c == '\n') {
            ir_error(lx->d, t.loc, "unterminated string (missing the closing '\"')");
            lx->pos += i;
            return error_token(t);
        }
        if (c == '"') break;
        if (c == '\\') {
            int e = peek(lx, i + 1);
            if (e == '"' || e == '\\') {
                i += 2;
                continue;
            }
            if (!bad_loc.line && e != '\n' && lx->pos + i + 1 < lx->len) {
                bad_loc = loc_at(lx, lx->pos + i);
                bad_c = e;
            }
        } else if (c < 0x20 && c != '\t' && !bad_loc.line) {
            bad_loc = loc_at(lx, lx->pos + i);
            bad_c = -1;
        }
        i++;
    }
    t.text = lx->src + lx->pos + 1;
    t.len = i - 1;
    lx->pos += i + 1;
    if (bad_loc.line) {
        if (bad_c < 0)
            ir_error(lx->d, bad_loc, "control character in string");
        else if (bad_c > 0x20 && bad_c < 0x7f)
            ir_error(lx->d, bad_loc,
                     "unknown escape sequence '\\%c' in string (only \\\" and \\\\ are allowed)",
                     bad_c);
        else
            ir_error(lx->d, bad_loc,
                     "unknown escape sequence in string (only \\\" and \\\\ are allowed)");
        return error_token(t);
    }
    t.kind = FE_TK_STRING;
    return t;
}

fe_token fe_lex(fe_lexer *lx) {
    skip_space(lx);
    fe_token t;
    memset(&t, 0, sizeof t);
    t.loc = loc_at(lx, lx->pos);
    t.text = lx->src + lx->pos;
    t.bol = lx->line != lx->last_line;
    if (lx->pos >= lx->len) {
        t.kind = FE_TK_EOF;
        t.loc = lx->end_loc.line ? lx->end_loc : (ir_loc){1, 1};
        t.len = 0;
        t.bol = true;
        return t;
    }
    lx->last_line = lx->line;

    int c = peek(lx, 0), c1 = peek(lx, 1);
    static const struct {
        char c;
        fe_tok_kind k;
    } punct[] = {{'(', FE_TK_LPAREN},   {')', FE_TK_RPAREN},   {'{', FE_TK_LBRACE},
                 {'}', FE_TK_RBRACE},   {'[', FE_TK_LBRACKET}, {']', FE_TK_RBRACKET},
                 {',', FE_TK_COMMA},    {':', FE_TK_COLON},    {'=', FE_TK_EQUAL}};
    for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++) {
        if (c == punct[k].c) {
            t.kind = punct[k].k;
            t.len = 1;
            lx->pos++;
            goto done;
        }
    }
    if (c == '-' && c1 == '>') {
        t.kind = FE_TK_ARROW;
        t.len = 2;
        lx->pos += 2;
    } else if (is_digit(c) || (c == '.' && is_digit(c1)) ||
               (c == '-' && (is_digit(c1) || c1 == '.' || word_is(lx, 1, "inf")))) {
        t = lex_number(lx, t);
    } else if (c == '%') {
        t = lex_sigil_name(lx, t, FE_TK_VALUE);
    } else if (c == '@') {
        t = lex_sigil_name(lx, t, FE_TK_GLOBAL);
    } else if (c == '"') {
        t = lex_string(lx, t);
    } else if (is_name_start(c)) {
        t.len = name_run(lx, 0);
        lx->pos += t.len;
        t.kind = FE_TK_IDENT;
        if (t.len == 3 && memcmp(t.text, "inf", 3) == 0) {
            t.kind = FE_TK_FLOAT;
            t.f = INFINITY;
        } else if (t.len == 3 && memcmp(t.text, "nan", 3) == 0) {
            t.kind = FE_TK_FLOAT;
            t.f = NAN;
        }
    } else {
        /* One error for a stray byte; skip a whole UTF-8 sequence. */
        if (c > 0x20 && c < 0x7f)
            ir_error(lx->d, t.loc, "unexpected character '%c'", c);
        else
            ir_error(lx->d, t.loc, "unexpected byte 0x%02x", (unsigned)c);
        lx->pos++;
        if (c >= 0xc0)
            while (lx->pos < lx->len && (peek(lx, 0) & 0xc0) == 0x80) lx->pos++;
        t.len = 1;
        t.kind = FE_TK_ERROR;
    }
done:
    lx->end_loc = loc_at(lx, lx->pos);
    return t;
}

size_t fe_string_unescape(const fe_token *tok, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < tok->len; i++) {
        char c = tok->text[i];
        if (c == '\\' && i + 1 < tok->len) c = tok->text[++i];
        out[n++] = c;
    }
    out[n] = 0;
    return n;
}

void fe_token_describe(ir_str *s, const fe_token *tok) {
    const char *pre = "", *post = "";
    size_t n = tok->len;
    switch (tok->kind) {
    case FE_TK_EOF: ir_str_puts(s, "end of file"); return;
    case FE_TK_ERROR: ir_str_puts(s, "an invalid token"); return;
    case FE_TK_VALUE: pre = "%"; break;
    case FE_TK_GLOBAL: pre = "@"; break;
    case FE_TK_STRING: pre = post = "\""; break;
    default: break;
    }
    bool cut = n > 40;
    ir_str_printf(s, "'%s%.*s%s%s'", pre, (int)(cut ? 40 : n), tok->text, cut ? "..." : "", post);
}
