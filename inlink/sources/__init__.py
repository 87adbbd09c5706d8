"""Where fetch records come from: our crawler, WARC/WAT files, imports."""
