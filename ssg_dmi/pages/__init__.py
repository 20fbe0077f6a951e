"""HTML pages: decoding them as browsers do, a tokenizer and URL resolution that scan a
page, and the surgical rewrite of its ``<img>`` tags and ``<head>``. Pure text in, text out."""
