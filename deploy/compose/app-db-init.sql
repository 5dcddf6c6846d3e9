CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders (customer, total) SELECT 'customer-' || g, (g * 7 % 500) + 0.99 FROM generate_series(1, 100) AS g;
