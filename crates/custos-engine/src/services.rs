//! Services (tenants): an operator creates one. Where the policy checks age
//! for the operator's kind (b.stage: a non-business operator gives name,
//! date of birth and country at service creation, and under 19 is refused),
//! the creation must go through that collection point.

use custos_core::collect::{self, ErrorCode, FieldError};
use custos_store::{ServiceRow, StoreError};

use crate::ids::new_id;
use crate::subjects::{Audit, Caller, PLATFORM_SCOPE};
use crate::{Engine, EngineError, Result, stamp};
use custos_core::authz::{Operation, Target};

/// A request to create a service.
#[derive(Debug, Clone)]
pub struct NewService {
    /// The operator (a platform subject) who creates it.
    pub operator: String,
    /// The collection point the operator's items go through, if any.
    pub point: Option<String>,
    pub source: String,
    pub items: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCreated {
    pub id: String,
    pub operator: String,
    pub created_at: String,
}

impl Engine {
    pub async fn create_service(
        &self,
        caller: &Caller,
        req: NewService,
        now: jiff::Timestamp,
    ) -> Result<ServiceCreated> {
        self.permit(caller, Operation::CreateService, Target::None, None, None, now).await?;
        let policy = self.policy();
        let policy = &*policy;
        let operator_id = req.operator.clone();
        let operator = self
            .inner
            .store
            .read(move |r| r.subject(&operator_id))
            .await?
            .filter(|s| s.service_id.is_none())
            .ok_or(EngineError::NotFound)?;
        let age_points: Vec<String> = policy
            .collection_points
            .iter()
            .filter(|p| p.age_check && p.subject_kinds.iter().any(|k| k.as_str() == operator.kind))
            .map(|p| p.id.to_string())
            .collect();
        let collected = match &req.point {
            None if !age_points.is_empty() => {
                return Err(EngineError::Invalid(vec![FieldError::new(
                    "collection_point",
                    ErrorCode::MissingRequired,
                    format!(
                        "the policy checks the age of a {:?} at {}: name that collection point",
                        operator.kind,
                        age_points.join(", ")
                    ),
                )]));
            }
            None => Vec::new(),
            Some(point)
                if !age_points.is_empty()
                    && !age_points.iter().any(|p| p == point)
                    && policy.collection_points.iter().any(|p| p.id.as_str() == point) =>
            {
                return Err(EngineError::Invalid(vec![FieldError::new(
                    "collection_point",
                    ErrorCode::NotAllowed,
                    format!(
                        "the policy checks the age of a {:?} at {}: use that collection point",
                        operator.kind,
                        age_points.join(", ")
                    ),
                )]));
            }
            Some(point) => {
                let today = crate::utc_date(now);
                let mut collected = collect::check_collection(policy, point, &operator.kind, &req.items, today);
                if let Some(def) = policy.collection_points.iter().find(|p| p.id.as_str() == point)
                    && !def.sources.iter().any(|s| s.as_str() == req.source)
                {
                    let e = FieldError::new(
                        "source",
                        ErrorCode::NotAllowed,
                        "this collection point does not take data from that source",
                    );
                    collected = match collected {
                        Ok(_) => Err(vec![e]),
                        Err(mut errors) => {
                            errors.push(e);
                            Err(errors)
                        }
                    };
                }
                collected.map_err(EngineError::Invalid)?
            }
        };
        let at = stamp(now);
        let service_id = new_id("svc")?;
        let (rows, indexes) = if collected.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let key_id = operator.profile_key.clone();
            let key_row = self
                .write_job(move |tx| tx.key(&key_id))
                .await?
                .ok_or_else(|| EngineError::Integrity("the operator's key is gone".into()))?;
            let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
            self.seal_items(
                &operator.id,
                &key_row.id,
                &key,
                PLATFORM_SCOPE,
                collected,
                &req.source,
                req.point.as_deref(),
                &at,
            )
            .await?
        };
        let version = policy.meta.version.clone();
        let caller = caller.clone();
        let created = ServiceCreated { id: service_id, operator: operator.id.clone(), created_at: at.clone() };
        let names: Vec<String> = rows.iter().map(|r: &custos_store::ItemRow| r.item.clone()).collect();
        self.write_job(move |tx| {
            for row in &rows {
                tx.put_item(row)?;
            }
            for (item, digest) in &indexes {
                tx.remove_index(&created.operator, item)?;
                tx.insert_index(PLATFORM_SCOPE, item, digest, &created.operator).map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("a subject with this {item} is already registered here"))
                    }
                    other => other,
                })?;
            }
            tx.insert_service(&ServiceRow {
                id: created.id.clone(),
                operator_id: created.operator.clone(),
                created_at: at.clone(),
                allowed_ips: String::new(),
            })?;
            Audit {
                caller: &caller,
                operation: "service_create",
                purpose: None,
                subject: Some(&created.operator),
                items: &names,
                outcome: &created.id,
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(created)
        })
        .await
        .map_err(EngineError::from)
    }
}
