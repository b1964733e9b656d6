//! Operator commands that are more than a call: `seed-demo` and `user add`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::distributions::{Alphanumeric, DistString};
use serde::Serialize;

use crate::db::schema::{categories, org_units};
use crate::db::{write_tx, DbConn};
use crate::domain::org::OrgKind;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};
use crate::service::org;
use crate::service::users::{self, CreateUser};

#[derive(Debug, Serialize)]
pub struct DemoUnit {
    pub id: i64,
    pub kind: OrgKind,
    pub name: String,
    pub parent_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DemoAccount {
    pub id: i64,
    pub role: Role,
    pub username: Option<String>,
    pub password: Option<String>,
    pub display_name: String,
    pub phone: Option<String>,
    pub org_unit_id: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct DemoCategory {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// What `seed-demo` created, printed as JSON for scripts.
#[derive(Debug, Serialize)]
pub struct DemoData {
    pub street: DemoUnit,
    pub communities: Vec<DemoUnit>,
    pub compounds: Vec<DemoUnit>,
    pub buildings: Vec<DemoUnit>,
    pub categories: Vec<DemoCategory>,
    pub accounts: Vec<DemoAccount>,
    pub residents: Vec<DemoAccount>,
}

fn unit(r: &crate::db::models::OrgUnitRow) -> DemoUnit {
    DemoUnit {
        id: r.id,
        kind: r.kind,
        name: r.name.clone(),
        parent_id: r.parent_id,
        code: r.code.clone(),
    }
}

fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 14)
}

/// Creates the demo street 云城街 (code `code`): 3 communities × 2 compounds × 2 buildings, one
/// staff account per unit, an admin, two residents. Refuses if the code is taken.
pub fn seed_demo(
    conn: &mut DbConn,
    code: &str,
    password: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<DemoData> {
    write_tx(conn, |c| {
        let taken: i64 = org_units::table
            .filter(crate::db::sqlite_plans::street_kind())
            .filter(org_units::code.eq(code.to_uppercase()))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(AppError::conflict(
                "demo_exists",
                format!(
                    "代码为 {} 的街道已存在：演示数据已创建过 / demo street already exists",
                    code.to_uppercase()
                ),
            ));
        }
        let prefix = code.to_lowercase();
        let pw = |p: Option<&str>| p.map(str::to_string).unwrap_or_else(random_password);
        let street = org::create(c, OrgKind::Street, None, "云城街道", Some(code), now)?;
        let mut out = DemoData {
            street: unit(&street),
            communities: vec![],
            compounds: vec![],
            buildings: vec![],
            categories: vec![],
            accounts: vec![],
            residents: vec![],
        };
        let add_staff = |c: &mut DbConn,
                         out: &mut DemoData,
                         role: Role,
                         username: String,
                         name: String,
                         unit_id: Option<i64>,
                         phone: String|
         -> AppResult<()> {
            let password = pw(password);
            let row = users::create(
                c,
                &CreateUser {
                    role,
                    username: Some(username),
                    password: Some(password.clone()),
                    display_name: name,
                    phone: Some(phone),
                    email: None,
                    org_unit_id: unit_id,
                },
                now,
            )?;
            out.accounts.push(DemoAccount {
                id: row.id,
                role,
                username: row.username,
                password: Some(password),
                display_name: row.display_name,
                phone: row.phone,
                org_unit_id: row.org_unit_id,
            });
            Ok(())
        };
        let admin_exists: i64 = crate::db::schema::users::table
            .filter(crate::db::schema::users::username.eq(format!("{prefix}-admin")))
            .count()
            .get_result(c)?;
        if admin_exists == 0 {
            add_staff(
                c,
                &mut out,
                Role::Admin,
                format!("{prefix}-admin"),
                "系统管理员".into(),
                None,
                "13900000000".into(),
            )?;
        }
        add_staff(
            c,
            &mut out,
            Role::StreetStaff,
            format!("{prefix}-street"),
            "街党工委值班员".into(),
            Some(street.id),
            "13900000001".into(),
        )?;
        let communities = ["方园社区", "萧岗社区", "云苑社区"];
        let compounds = [
            ["方园小区", "华糖小区"],
            ["萧岗花园", "公安宿舍"],
            ["云苑新村", "金钟大院"],
        ];
        let mut phone_seq = 10;
        for (ci, cname) in communities.iter().enumerate() {
            let community = org::create(c, OrgKind::Community, Some(street.id), cname, None, now)?;
            out.communities.push(unit(&community));
            phone_seq += 1;
            add_staff(
                c,
                &mut out,
                Role::CommunityStaff,
                format!("{prefix}-c{}", ci + 1),
                format!("{cname}党支部书记"),
                Some(community.id),
                format!("139000000{phone_seq:02}"),
            )?;
            for (pi, pname) in compounds[ci].iter().enumerate() {
                let compound =
                    org::create(c, OrgKind::Compound, Some(community.id), pname, None, now)?;
                out.compounds.push(unit(&compound));
                phone_seq += 1;
                add_staff(
                    c,
                    &mut out,
                    Role::CompoundStaff,
                    format!("{prefix}-c{}-p{}", ci + 1, pi + 1),
                    format!("{pname}党支部书记"),
                    Some(compound.id),
                    format!("139000000{phone_seq:02}"),
                )?;
                for b in 1..=2 {
                    let building = org::create(
                        c,
                        OrgKind::Building,
                        Some(compound.id),
                        &format!("{b}栋"),
                        None,
                        now,
                    )?;
                    out.buildings.push(unit(&building));
                }
            }
        }
        for (i, name) in ["张阿姨", "李先生"].iter().enumerate() {
            let phone = format!("1380000000{}", i + 1);
            let existing: Option<i64> = crate::db::schema::users::table
                .filter(crate::db::sqlite_plans::resident_role())
                .filter(crate::db::schema::users::phone.eq(&phone))
                .select(crate::db::schema::users::id)
                .first(c)
                .optional()?;
            let id = match existing {
                Some(id) => id,
                None => {
                    users::create(
                        c,
                        &CreateUser {
                            role: Role::Resident,
                            username: None,
                            password: None,
                            display_name: name.to_string(),
                            phone: Some(phone.clone()),
                            email: None,
                            org_unit_id: None,
                        },
                        now,
                    )?
                    .id
                }
            };
            out.residents.push(DemoAccount {
                id,
                role: Role::Resident,
                username: None,
                password: None,
                display_name: name.to_string(),
                phone: Some(phone),
                org_unit_id: None,
            });
        }
        out.categories = categories::table
            .filter(categories::archived_at.is_null())
            .order(categories::sort_order.asc())
            .select((categories::id, categories::code, categories::name))
            .load::<(i64, String, String)>(c)?
            .into_iter()
            .map(|(id, code, name)| DemoCategory { id, code, name })
            .collect();
        Ok(out)
    })
}
