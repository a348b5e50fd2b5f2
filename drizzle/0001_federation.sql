CREATE TABLE `federated_bundles` (
	`trust_domain` text PRIMARY KEY NOT NULL,
	`bundle` text NOT NULL,
	`sequence` integer,
	`refresh_hint` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `federation_relationships` (
	`trust_domain` text PRIMARY KEY NOT NULL,
	`bundle_endpoint_url` text NOT NULL,
	`bundle_endpoint_profile` text NOT NULL,
	`endpoint_spiffe_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`last_refresh_at` integer DEFAULT 0 NOT NULL,
	`last_refresh_error` text DEFAULT '' NOT NULL,
	`next_refresh_at` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `federation_relationships_next_refresh_at_idx` ON `federation_relationships` (`next_refresh_at`);--> statement-breakpoint
CREATE TABLE `federation_revision` (
	`id` integer PRIMARY KEY NOT NULL,
	`revision` integer NOT NULL,
	CONSTRAINT "federation_revision_single_row" CHECK("federation_revision"."id" = 1)
);
