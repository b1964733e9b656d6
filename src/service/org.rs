//! The org tree: streets → communities → compounds → buildings.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::{NewOrgUnit, OrgUnitRow};
use crate::db::schema::org_units;
use crate::db::DbConn;
use crate::domain::org::OrgKind;
use crate::domain::validate;
use crate::error::{AppError, AppResult};

/// One unit of the org tree, with its children.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgNode {
    pub id: i64,
    pub kind: OrgKind,
    pub name: String,
    /// Street code used in ticket references (streets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub archived: bool,
    #[schema(no_recursion)]
    pub children: Vec<OrgNode>,
}

/// A unit without children.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgUnit {
    pub id: i64,
    pub kind: OrgKind,
    pub name: String,
    pub parent_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub archived: bool,
    /// Streets: which level makes the callbacks (`null`: the configured default, `[callbacks]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_level: Option<crate::domain::callback::CallbackLevel>,
}

impl From<&OrgUnitRow> for OrgUnit {
    fn from(r: &OrgUnitRow) -> Self {
        OrgUnit {
            id: r.id,
            kind: r.kind,
            name: r.name.clone(),
            parent_id: r.parent_id,
            code: r.code.clone(),
            archived: r.archived_at.is_some(),
            callback_level: r.callback_level,
        }
    }
}

pub fn find(conn: &mut DbConn, id: i64) -> AppResult<Option<OrgUnitRow>> {
    Ok(org_units::table
        .find(id)
        .select(OrgUnitRow::as_select())
        .first(conn)
        .optional()?)
}

/// A unit that must exist and be of `kind`, else a 422 naming the field.
pub fn require_kind(
    conn: &mut DbConn,
    id: i64,
    kind: OrgKind,
    field: &'static str,
) -> AppResult<OrgUnitRow> {
    match find(conn, id)? {
        Some(u) if u.kind == kind => Ok(u),
        _ => Err(AppError::validation(
            "unknown_org_unit",
            format!("{field} 指向的{}不存在", kind.label_zh()),
        )),
    }
}

pub fn create(
    conn: &mut DbConn,
    kind: OrgKind,
    parent_id: Option<i64>,
    name: &str,
    code: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<OrgUnitRow> {
    let name = validate::text("name", name, 60)?;
    let code = match (kind, code) {
        (OrgKind::Street, Some(c)) => Some(validate::street_code(c)?),
        (OrgKind::Street, None) => {
            return Err(AppError::validation("missing_field", "街道须有代码 code"))
        }
        (_, _) => None,
    };
    match (kind.parent_kind(), parent_id) {
        (None, _) => {}
        (Some(pk), Some(pid)) => {
            let parent = require_kind(conn, pid, pk, "parent_id")?;
            if parent.archived_at.is_some() {
                return Err(AppError::validation(
                    "archived_parent",
                    "上级单位已归档，不能再添加下级",
                ));
            }
        }
        (Some(pk), None) => {
            return Err(AppError::validation(
                "missing_field",
                format!("须指定所属{}", pk.label_zh()),
            ))
        }
    }
    if let Some(c) = &code {
        let taken: i64 = org_units::table
            .filter(crate::db::sqlite_plans::street_kind())
            .filter(org_units::code.eq(c))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AppError::conflict("duplicate_code", "该街道代码已被使用"));
        }
    }
    let id: i64 = diesel::insert_into(org_units::table)
        .values(NewOrgUnit {
            kind,
            parent_id: if kind == OrgKind::Street {
                None
            } else {
                parent_id
            },
            code: code.as_deref(),
            name: &name,
            created_at: now,
            updated_at: now,
        })
        .returning(org_units::id)
        .get_result(conn)?;
    find(conn, id)?.ok_or(AppError::NotFound)
}

pub fn update(
    conn: &mut DbConn,
    kind: OrgKind,
    id: i64,
    name: Option<&str>,
    archived: Option<bool>,
    callback_level: Option<crate::domain::callback::CallbackLevel>,
    now: NaiveDateTime,
) -> AppResult<OrgUnitRow> {
    let unit = match find(conn, id)? {
        Some(u) if u.kind == kind => u,
        _ => return Err(AppError::NotFound),
    };
    if let Some(n) = name {
        let n = validate::text("name", n, 60)?;
        diesel::update(org_units::table.find(unit.id))
            .set((org_units::name.eq(n), org_units::updated_at.eq(now)))
            .execute(conn)?;
    }
    if let Some(l) = callback_level {
        if unit.kind != OrgKind::Street {
            return Err(AppError::validation(
                "invalid_callback_level",
                "只有街道可以设置由哪一级负责回访",
            ));
        }
        diesel::update(org_units::table.find(unit.id))
            .set((
                org_units::callback_level.eq(l.as_str()),
                org_units::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    if let Some(a) = archived {
        let value = if a {
            Some(unit.archived_at.unwrap_or(now))
        } else {
            None
        };
        diesel::update(org_units::table.find(unit.id))
            .set((
                org_units::archived_at.eq(value),
                org_units::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    find(conn, id)?.ok_or(AppError::NotFound)
}

/// The whole tree; archived units (and everything under them) only when asked.
pub fn tree(conn: &mut DbConn, include_archived: bool) -> AppResult<Vec<OrgNode>> {
    let rows: Vec<OrgUnitRow> = org_units::table
        .select(OrgUnitRow::as_select())
        .order((org_units::name.asc(), org_units::id.asc()))
        .load(conn)?;
    Ok(build_tree(&rows, include_archived))
}

fn build_tree(rows: &[OrgUnitRow], include_archived: bool) -> Vec<OrgNode> {
    use std::collections::HashMap;
    let mut children: HashMap<Option<i64>, Vec<&OrgUnitRow>> = HashMap::new();
    for r in rows {
        if include_archived || r.archived_at.is_none() {
            children.entry(r.parent_id).or_default().push(r);
        }
    }
    fn build(
        parent: Option<i64>,
        children: &HashMap<Option<i64>, Vec<&OrgUnitRow>>,
        depth: usize,
    ) -> Vec<OrgNode> {
        if depth > 4 {
            return Vec::new();
        }
        children
            .get(&parent)
            .map(|list| {
                list.iter()
                    .map(|r| OrgNode {
                        id: r.id,
                        kind: r.kind,
                        name: r.name.clone(),
                        code: r.code.clone(),
                        archived: r.archived_at.is_some(),
                        children: build(Some(r.id), children, depth + 1),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    build(None, &children, 0)
}
