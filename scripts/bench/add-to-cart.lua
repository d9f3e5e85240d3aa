-- wrk: POST /api/v1/carts/{token}/lines for a random prepared cart and variant.
-- Environment: CARTS (file of cart tokens), VARIANTS (file of variant ids), KEY (publishable key).
local function lines(path)
  local t = {}
  for l in io.lines(path) do if #l > 0 then t[#t + 1] = l end end
  return t
end
local carts = lines(os.getenv("CARTS"))
local variants = lines(os.getenv("VARIANTS"))
local key = os.getenv("KEY")
math.randomseed(os.time())
request = function()
  local cart = carts[math.random(#carts)]
  local variant = variants[math.random(#variants)]
  local body = '{"variant_id":"' .. variant .. '","quantity":1}'
  return wrk.format("POST", "/api/v1/carts/" .. cart .. "/lines",
    { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }, body)
end
