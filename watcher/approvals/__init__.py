"""Approvals (issue 27): production only after named approvers whose identity the daemon verified."""
