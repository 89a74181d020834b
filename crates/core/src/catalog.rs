//! A database catalog as onboarding sees it: tables and views, their columns with declared
//! types, primary and unique keys, foreign keys and indexes.
//!
//! What it is: plain data, engine-neutral. `synapsor_source::catalog` reads it from a database;
//! `synapsor-onboard` makes suggestions and configs from it. What it is not: it holds no table
//! data (column defaults are not even kept: they may quote data).

use serde::{Deserialize, Serialize};

use crate::config::Engine;

/// The tables and views of one schema (PostgreSQL schema, MySQL database, SQLite `main`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub engine: Engine,
    /// The schema that was read: `public` by default on PostgreSQL, the URL's database on MySQL,
    /// `main` on SQLite.
    pub schema: String,
    /// Sorted by name.
    pub tables: Vec<TableInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Table,
    View,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub kind: TableKind,
    /// In column order.
    pub columns: Vec<ColumnInfo>,
    /// Columns of the primary key in key order; empty when there is none (always for views).
    pub primary_key: Vec<String>,
    /// Unique constraints and unique indexes other than the primary key, each in key order.
    pub unique_keys: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Every index, the primary key's and unique ones included (SQLite's automatic ones too).
    pub indexes: Vec<IndexInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The declared type as the catalog spells it, lowercased: `integer`, `character varying(64)`,
    /// `timestamp with time zone`, `varchar(64)`, `bigint unsigned`, `blob`, SQLite's declared
    /// affinity text (empty when none was declared).
    pub data_type: String,
    pub nullable: bool,
    /// Whether the column has a default (its expression is not kept: it may quote data).
    pub has_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    /// The referenced table (in the same schema, or `schema.table` when in another).
    pub references_table: String,
    pub references_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.name == name)
    }
}
