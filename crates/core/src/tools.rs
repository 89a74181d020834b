//! How capabilities appear to a model as tools (being written).
