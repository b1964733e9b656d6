DROP TABLE categories;
DROP TABLE app_secrets;
DROP TABLE refresh_tokens;
DROP TABLE otp_codes;
DROP TABLE users;
DROP TABLE org_units;
