//! The caller: dealer, staff user and roles, read from the JWT authorizer's claims.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use consent::{DealerId, StaffUserId};

use super::problem::Problem;

/// Who is calling: the dealer, the staff user and their roles, from the JWT
/// authorizer's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub dealer: DealerId,
    pub user: StaffUserId,
    pub roles: Vec<String>,
}

/// The role that manages a dealer's settings (texting number included).
pub const DEALER_ADMIN: &str = "dealer-admin";

impl Identity {
    /// 403 problem unless the caller holds `role`.
    pub fn require(&self, role: &str) -> Result<(), Problem> {
        if self.roles.iter().any(|r| r == role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!("this needs the {role} role")))
        }
    }
}

/// The `roles` claim as API Gateway hands it over: a list claim arrives as the string
/// `[a b]`; a JSON array or a single name are read too.
fn roles_claim(value: Option<&String>) -> Vec<String> {
    let Some(raw) = value.map(|v| v.trim()) else {
        return Vec::new();
    };
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(|r| r.trim().trim_matches('"'))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which claims of the identity provider's token name the dealer, the staff user and
/// their roles: the stack's `DealerClaim`, `UserClaim` and `RolesClaim` parameters
/// (`CLAIM_DEALER`, `CLAIM_USER`, `CLAIM_ROLES`). A Cognito user pool issues
/// `custom:dealer_id`, `cognito:username` and `cognito:groups` (docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub dealer: String,
    pub user: String,
    pub roles: String,
}

impl Default for ClaimNames {
    /// `dealer_id`, `sub`, `roles`: what an identity provider of the DMS issues unless
    /// the stack is told otherwise.
    fn default() -> Self {
        Self {
            dealer: "dealer_id".into(),
            user: "sub".into(),
            roles: "roles".into(),
        }
    }
}

/// Reads the identity API Gateway's JWT authorizer put in the request context, from the
/// claims `names` says. No claims (no authorizer ran) or malformed ids -> 401.
pub fn identity(req: &Request, names: &ClaimNames) -> Result<Identity, Problem> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| &j.claims),
        _ => None,
    }
    .ok_or_else(Problem::unauthorized)?;
    let dealer = claims
        .get(&names.dealer)
        .and_then(|d| DealerId::parse(d.as_str()).ok())
        .ok_or_else(Problem::unauthorized)?;
    let user = claims
        .get(&names.user)
        .and_then(|u| StaffUserId::parse(u.as_str()).ok())
        .ok_or_else(Problem::unauthorized)?;
    let roles = roles_claim(claims.get(&names.roles));
    Ok(Identity {
        dealer,
        user,
        roles,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn roles_are_read_as_api_gateway_hands_them_over() {
        let read = |s: &str| super::roles_claim(Some(&s.to_owned()));
        assert_eq!(read("[dealer-admin staff]"), ["dealer-admin", "staff"]);
        assert_eq!(read(r#"["dealer-admin"]"#), ["dealer-admin"]);
        assert_eq!(read("dealer-admin"), ["dealer-admin"]);
        assert!(read("[]").is_empty());
        assert!(super::roles_claim(None).is_empty());
    }

    /// A request as API Gateway's JWT authorizer hands it over, with these claims.
    fn with_claims(claims: &[(&str, &str)]) -> lambda_http::Request {
        let claims: serde_json::Map<String, serde_json::Value> = claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /v1/x", "rawPath": "/v1/x", "rawQueryString": "",
            "headers": {}, "isBase64Encoded": false,
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "requestId": "r", "routeKey": "GET /v1/x", "stage": "$default", "time": "t",
                "timeEpoch": 0,
                "http": {"method": "GET", "path": "/v1/x", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            }
        });
        lambda_http::request::from_str(&event.to_string()).expect("an HTTP API event")
    }

    #[test]
    fn the_caller_is_read_from_the_claims_the_stack_names() {
        let cognito = super::ClaimNames {
            dealer: "custom:dealer_id".into(),
            user: "cognito:username".into(),
            roles: "cognito:groups".into(),
        };
        let from_pool = with_claims(&[
            ("sub", "5b1c0f0e-8d9e-4c1e-9f55-0d9c2a1f7e10"),
            ("custom:dealer_id", "dealer-7"),
            ("cognito:username", "staff-3"),
            ("cognito:groups", "[dealer-admin]"),
        ]);
        let who = super::identity(&from_pool, &cognito).expect("a Cognito identity");
        assert_eq!(who.dealer.as_str(), "dealer-7");
        assert_eq!(who.user.as_str(), "staff-3");
        assert_eq!(who.roles, ["dealer-admin"]);
        // The default names find no dealer in a Cognito token: 401, never another dealer's.
        let err = super::identity(&from_pool, &super::ClaimNames::default()).unwrap_err();
        assert_eq!(err.status, 401);
        // A dealer claim under the default name is not read when the stack names another.
        let plain = with_claims(&[("sub", "staff-1"), ("dealer_id", "dealer-1")]);
        assert!(super::identity(&plain, &super::ClaimNames::default()).is_ok());
        assert_eq!(super::identity(&plain, &cognito).unwrap_err().status, 401);
    }
}
