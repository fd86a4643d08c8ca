import { CheckerError, CheckerErrorCode } from "./errors.js";

/** A keyword such as `:invoke`, kept apart from strings because EDN distinguishes them. */
export class EdnKeyword {
  constructor(readonly name: string) {}
}

/** The EDN subset histories use: maps with keyword keys, vectors, keywords, strings, integers, nil, booleans. */
export type EdnValue = null | boolean | number | string | EdnKeyword | readonly EdnValue[] | EdnMap;

/** A map keyed by keyword name. */
export type EdnMap = ReadonlyMap<string, EdnValue>;

const Char = {
  tab: 0x09,
  newline: 0x0a,
  carriageReturn: 0x0d,
  space: 0x20,
  quote: 0x22,
  comma: 0x2c,
  minus: 0x2d,
  colon: 0x3a,
  zero: 0x30,
  nine: 0x39,
  openBracket: 0x5b,
  backslash: 0x5c,
  closeBracket: 0x5d,
  openBrace: 0x7b,
  closeBrace: 0x7d,
} as const;

const stringEscapes: Readonly<Record<string, string>> = {
  t: "\t",
  r: "\r",
  n: "\n",
  b: "\b",
  f: "\f",
  '"': '"',
  "\\": "\\",
};
/** Marks the (ASCII) characters of keyword names, symbols and integers. */
const tokenCharacters = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*+!_?<>=./-") {
  tokenCharacters[c.charCodeAt(0)] = 1;
}

function isWhitespace(c: number): boolean {
  // EDN treats commas as whitespace.
  return c === Char.space || c === Char.comma || c === Char.tab || c === Char.carriageReturn || c === Char.newline;
}

function isDigit(c: number): boolean {
  return c >= Char.zero && c <= Char.nine;
}

class LineParser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly lineNumber: number,
  ) {}

  parseMapLine(): EdnMap {
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) !== Char.openBrace) this.fail("expected a map starting with '{'");
    const map = this.parseValue();
    this.skipWhitespace();
    if (this.pos < this.text.length) this.fail("unexpected text after the map");
    return map as EdnMap;
  }

  private fail(message: string): never {
    throw new CheckerError(CheckerErrorCode.Parse, `line ${this.lineNumber}, column ${this.pos + 1}: ${message}`, {
      line: this.lineNumber,
    });
  }

  private skipWhitespace(): void {
    while (this.pos < this.text.length && isWhitespace(this.text.charCodeAt(this.pos))) this.pos++;
  }

  private parseValue(): EdnValue {
    this.skipWhitespace();
    if (this.pos >= this.text.length) this.fail("unexpected end of line");
    const c = this.text.charCodeAt(this.pos);
    if (c === Char.openBrace) return this.parseMap();
    if (c === Char.openBracket) return this.parseVector();
    if (c === Char.quote) return this.parseString();
    if (c === Char.colon) return this.parseKeyword();
    if (c === Char.minus || isDigit(c)) return this.parseInteger();
    return this.parseSymbol();
  }

  private parseMap(): EdnMap {
    this.pos++;
    const map = new Map<string, EdnValue>();
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) === Char.closeBrace) {
        this.pos++;
        return map;
      }
      if (this.pos >= this.text.length) this.fail("unterminated map");
      if (this.text.charCodeAt(this.pos) !== Char.colon) this.fail("map keys must be keywords");
      const keyStart = this.pos;
      const key = this.parseKeyword().name;
      if (map.has(key)) {
        this.pos = keyStart;
        this.fail(`duplicate key :${key}`);
      }
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) === Char.closeBrace) this.fail(`key :${key} has no value`);
      map.set(key, this.parseValue());
    }
  }

  private parseVector(): EdnValue[] {
    this.pos++;
    const items: EdnValue[] = [];
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) === Char.closeBracket) {
        this.pos++;
        return items;
      }
      if (this.pos >= this.text.length) this.fail("unterminated vector");
      items.push(this.parseValue());
    }
  }

  private parseString(): string {
    const start = this.pos;
    this.pos++;
    let result = "";
    let chunkStart = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c === Char.quote) {
        result += this.text.slice(chunkStart, this.pos);
        this.pos++;
        return result;
      }
      if (c === Char.backslash) {
        result += this.text.slice(chunkStart, this.pos);
        result += this.parseEscape();
        chunkStart = this.pos;
      } else {
        this.pos++;
      }
    }
    this.pos = start;
    return this.fail("unterminated string");
  }

  /** Reads the escape sequence at the backslash under the cursor and returns the character it stands for. */
  private parseEscape(): string {
    const marker = this.text[this.pos + 1] ?? "";
    if (marker === "u") {
      const hex = this.text.slice(this.pos + 2, this.pos + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("\\u must be followed by four hexadecimal digits");
      this.pos += 6;
      return String.fromCharCode(Number.parseInt(hex, 16));
    }
    const escaped = stringEscapes[marker];
    if (escaped === undefined) this.fail(`unsupported escape sequence \\${marker}`);
    this.pos += 2;
    return escaped;
  }

  private parseKeyword(): EdnKeyword {
    this.pos++;
    const name = this.readToken();
    if (name === "") this.fail("empty keyword");
    return new EdnKeyword(name);
  }

  private parseInteger(): number {
    const start = this.pos;
    const token = this.readToken();
    if (!/^-?[0-9]+$/.test(token)) {
      this.pos = start;
      this.fail(`expected an integer, found '${token}'`);
    }
    const value = Number(token);
    if (!Number.isSafeInteger(value)) {
      this.pos = start;
      this.fail(`integer ${token} is out of range`);
    }
    return value;
  }

  private parseSymbol(): null | boolean {
    const start = this.pos;
    const token = this.readToken();
    if (token === "nil") return null;
    if (token === "true") return true;
    if (token === "false") return false;
    this.pos = start;
    return this.fail(token === "" ? `unexpected character '${this.text[this.pos]}'` : `unsupported symbol '${token}'`);
  }

  /** Reads a run of allowed characters, which must end at a delimiter. */
  private readToken(): string {
    const start = this.pos;
    while (tokenCharacters[this.text.charCodeAt(this.pos)] === 1) this.pos++;
    const c = this.text.charCodeAt(this.pos);
    if (this.pos < this.text.length && !isWhitespace(c) && c !== Char.closeBrace && c !== Char.closeBracket) {
      this.fail(`unexpected character '${this.text[this.pos]}'`);
    }
    return this.text.slice(start, this.pos);
  }
}

/** Parses one line holding exactly one EDN map; `lineNumber` (1-based) goes into error messages. */
export function parseEdnMapLine(text: string, lineNumber: number): EdnMap {
  return new LineParser(text, lineNumber).parseMapLine();
}

export function formatEdnString(text: string): string {
  // JSON string syntax is EDN string syntax except for escapes EDN lacks: \/ is never produced,
  // and JSON's \uXXXX for control characters is valid EDN.
  return JSON.stringify(text);
}

/** Formats a value as EDN: `nil`, a boolean, a string, an integer, a keyword, a vector or a map. */
export function formatEdnValue(value: EdnValue): string {
  if (value === null) return "nil";
  if (typeof value === "string") return formatEdnString(value);
  if (typeof value === "number" || typeof value === "boolean") return `${value}`;
  if (value instanceof EdnKeyword) return `:${value.name}`;
  if (value instanceof Map) {
    return `{${[...value].map(([name, entry]) => `:${name} ${formatEdnValue(entry)}`).join(", ")}}`;
  }
  return `[${(value as readonly EdnValue[]).map(formatEdnValue).join(" ")}]`;
}
