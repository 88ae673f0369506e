"""The kopf operator that reconciles OAuthProvider resources into the service's configuration."""
