/*
 * lexer.h - tokens of the text IR (spec: docs/ir.md, section 2).
 *
 * The lexer works on a byte buffer that need not be NUL-terminated and never
 * reads past its length.  It hands out one token at a time; a lexical error
 * (stray character, bad number, unterminated string) is reported to the diag
 * once and comes back as an FE_TK_ERROR token, so the parser can recover
 * without reporting it again.
 *
 * Locations are 1-based line and column; a column counts bytes from the start
 * of the line, so a tab counts as one column (the caret line under a
 * diagnostic repeats the tabs, so it still lines up).
 */
#ifndef FUSEC_FRONTEND_LEXER_H
#define FUSEC_FRONTEND_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

typedef enum fe_tok_kind {
    FE_TK_EOF,
    FE_TK_ERROR,  /* already reported to the diag                         */
    FE_TK_IDENT,  /* a bare name: func, return, op names, dtypes, true ...  */
    FE_TK_VALUE,  /* %name; text excludes the '%'                          */
    FE_TK_GLOBAL, /* @name; text excludes the '@'                          */
    FE_TK_INT,    /* an integer, in .i (and .f)                            */
    FE_TK_FLOAT,  /* a float incl. inf, -inf, nan, in .f                   */
    FE_TK_STRING, /* "..."; text is the raw body between the quotes        */
    FE_TK_LPAREN,
    FE_TK_RPAREN,
    FE_TK_LBRACE,
    FE_TK_RBRACE,
    FE_TK_LBRACKET,
    FE_TK_RBRACKET,
    FE_TK_COMMA,
    FE_TK_COLON,
    FE_TK_EQUAL,
    FE_TK_ARROW,
} fe_tok_kind;

typedef struct fe_token {
    fe_tok_kind kind;
    const char *text; /* points into the source; not NUL-terminated */
    size_t len;
    ir_loc loc;
    bool bol; /* first token on its line (statements restart here after an error) */
    int64_t i;
    double f;
} fe_token;

typedef struct fe_lexer {
    const char *src;
    size_t len, pos;
    int line;
    size_t line_start; /* offset of the current line's first byte */
    int last_line;     /* line of the previous token (for fe_token.bol) */
    ir_loc end_loc;    /* just past the previous token (line 0: none yet) */
    ir_diag *d;
} fe_lexer;

void fe_lexer_init(fe_lexer *lx, const char *src, size_t len, ir_diag *d);
fe_token fe_lex(fe_lexer *lx);

/* Copy a string token's body to out (room for tok->len + 1 bytes) with its
 * escapes resolved; returns the unescaped length.  The lexer has already
 * checked the escapes. */
size_t fe_string_unescape(const fe_token *tok, char *out);

/* Describe a token for "expected X, found Y" messages: "'('", "'%x'",
 * "number 2", "end of file", ... (written to s). */
void fe_token_describe(ir_str *s, const fe_token *tok);

#endif
