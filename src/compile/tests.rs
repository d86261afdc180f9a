//! Tests of the whole compile step: YAML in, table and status out.
